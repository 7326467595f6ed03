"""The calling tenant's own view: GET /v1/tenant/config, GET /v1/tenant/usage, and
POST /v1/tenant/keys/rotate (a new key for the caller; its current keys may keep a grace period)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from control_plane.api.admin import RotateBody, RotatedKey
from control_plane.api.deps import get_services, rate_limited
from control_plane.services.engines import ENGINES
from control_plane.services.tenants import TenantContext
from control_plane.services.usage import MAX_RANGE_DAYS, parse_range
from control_plane.services.voices import DEFAULT_VOICE_ALIAS
from control_plane.state import AppState

router = APIRouter(prefix="/v1/tenant", tags=["tenant"])


class TenantConfig(BaseModel):
    tenant_id: str
    name: str
    limits: dict[str, int]
    quotas: dict[str, int] = Field(description="Used so far against the limits that are quotas")
    engines: list[str]
    defaults: dict[str, object]


class UsageDay(BaseModel):
    date: str
    requests: int
    characters: int
    audio_seconds: float
    cache_hits: int
    errors: int
    avg_latency_ms: float


class UsageReport(BaseModel):
    tenant_id: str
    start_date: str
    end_date: str
    days: list[UsageDay]
    totals: dict[str, int | float]


@router.get("/config", response_model=TenantConfig, summary="Limits, quotas, engines and defaults")
async def tenant_config(tenant: TenantContext = Depends(rate_limited),
                        services: AppState = Depends(get_services)) -> TenantConfig:
    limits = asdict(tenant.limits)
    quotas = {
        "monthly_characters_used": await services.usage.characters_this_month(tenant.tenant_id),
        "voices_used": await services.store.voices.count(tenant.tenant_id),
        "concurrent_streams_used": await services.limiter.streams_held(tenant.tenant_id),
    }
    defaults = {"voice_id": DEFAULT_VOICE_ALIAS, "engine": "piper", "language": "en", "format": "wav",
                "speed": 1.0, "pitch": 1.0, "volume": 1.0}
    return TenantConfig(tenant_id=tenant.tenant_id, name=tenant.name, limits=limits, quotas=quotas,
                        engines=list(ENGINES), defaults=defaults)


@router.get("/usage", response_model=UsageReport, summary="Usage per UTC day in a date range")
async def tenant_usage(
    start_date: str | None = Query(None, description="YYYY-MM-DD; default the first day of end_date's month"),
    end_date: str | None = Query(None, description=f"YYYY-MM-DD, not before start_date, at most "
                                                   f"{MAX_RANGE_DAYS} days after it; default today"),
    tenant: TenantContext = Depends(rate_limited), services: AppState = Depends(get_services),
) -> UsageReport:
    start, end = parse_range(start_date, end_date)
    return UsageReport(**await services.usage.daily(tenant.tenant_id, start, end))


@router.post("/keys/rotate", response_model=RotatedKey, summary="Issue a new key for the calling tenant")
async def rotate_own_key(body: RotateBody | None = None, tenant: TenantContext = Depends(rate_limited),
                         services: AppState = Depends(get_services)) -> RotatedKey:
    key, until = await services.tenants.rotate_key(tenant.tenant_id, (body or RotateBody()).grace_seconds)
    return RotatedKey(tenant_id=tenant.tenant_id, api_key=key, previous_keys_valid_until=until)
