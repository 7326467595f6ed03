"""The calling tenant's own view: GET|PUT /v1/tenant/config, GET /v1/tenant/usage, and
POST /v1/tenant/keys/rotate (a new key for the caller; its current keys may keep a grace period).

PUT /v1/tenant/config changes what a tenant may set for itself (today its voice map: OpenAI voice
name or Deepgram Aura model -> one of its voices, read by POST /v1/audio/speech and /v1/speak); limits
stay with the admin API.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from control_plane.api.admin import RotateBody, RotatedKey
from control_plane.api.deps import RateLimitedTenant, Services
from control_plane.services.engines import ENGINES
from control_plane.services.tenants import TenantContext
from control_plane.services.usage import MAX_RANGE_DAYS, parse_range
from control_plane.services.voice_map import (
    MAX_VOICE_MAP_ENTRIES,
    OPENAI_VOICES,
    parse_voice_map,
    verify_voice_map,
)
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
    voice_map: dict[str, str] = Field(description="OpenAI voice name (POST /v1/audio/speech), Deepgram Aura "
                                                  "model (/v1/speak) or provider:voice (/tts/*) -> voice id")


class TenantConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice_map: dict[str, str] | None = Field(
        None, max_length=MAX_VOICE_MAP_ENTRIES,
        examples=[{"nova": "5b0c7a52-8d2e-4c1f-9a7e-1f0f3c2b9d10",
                   "aura-2-thalia-en": "5b0c7a52-8d2e-4c1f-9a7e-1f0f3c2b9d10"}],
        description=f"OpenAI voice name ({', '.join(OPENAI_VOICES)}), Deepgram Aura model name "
                    "(aura-2-thalia-en, ...) or 'cartesia:<Cartesia voice id>' -> one of your voice ids. Replaces "
                    "the whole map; {} clears it; unmapped names speak with the default voice.")


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


@router.get("/config", response_model=TenantConfig, summary="Limits, quotas, engines, defaults and voice map")
async def tenant_config(tenant: RateLimitedTenant, services: Services) -> TenantConfig:
    return await _config(tenant, services, tenant.voice_map)


@router.put("/config", response_model=TenantConfig, summary="Set the tenant's voice map")
async def update_tenant_config(body: TenantConfigUpdate, tenant: RateLimitedTenant, services: Services) -> TenantConfig:
    voice_map = tenant.voice_map
    if body.voice_map is not None:
        checked = await verify_voice_map(services.voices, tenant.tenant_id, body.voice_map)
        row = await services.tenants.set_voice_map(tenant.tenant_id, checked)
        voice_map = parse_voice_map(row.voice_map)
    return await _config(tenant, services, voice_map)


async def _config(tenant: TenantContext, services: AppState, voice_map: dict[str, str]) -> TenantConfig:
    limits = asdict(tenant.limits)
    quotas = {
        "monthly_characters_used": await services.usage.characters_this_month(tenant.tenant_id),
        "voices_used": await services.store.voices.count(tenant.tenant_id),
        "concurrent_streams_used": await services.limiter.streams_held(tenant.tenant_id),
    }
    defaults = {"voice_id": DEFAULT_VOICE_ALIAS, "engine": "piper", "language": "en", "format": "wav",
                "speed": 1.0, "pitch": 1.0, "volume": 1.0}
    return TenantConfig(tenant_id=tenant.tenant_id, name=tenant.name, limits=limits, quotas=quotas,
                        engines=list(ENGINES), defaults=defaults, voice_map=voice_map)


@router.get("/usage", response_model=UsageReport, summary="Usage per UTC day in a date range")
async def tenant_usage(
    tenant: RateLimitedTenant, services: Services,
    start_date: str | None = Query(None, description="YYYY-MM-DD; default the first day of end_date's month"),
    end_date: str | None = Query(None, description=f"YYYY-MM-DD, not before start_date, at most "
                                                   f"{MAX_RANGE_DAYS} days after it; default today"),
) -> UsageReport:
    start, end = parse_range(start_date, end_date)
    return UsageReport(**await services.usage.daily(tenant.tenant_id, start, end))


@router.post("/keys/rotate", response_model=RotatedKey, summary="Issue a new key for the calling tenant")
async def rotate_own_key(tenant: RateLimitedTenant, services: Services, body: RotateBody | None = None) -> RotatedKey:
    grace = (body or RotateBody.model_validate({})).grace_seconds
    key, until = await services.tenants.rotate_key(tenant.tenant_id, grace)
    return RotatedKey(tenant_id=tenant.tenant_id, api_key=key, previous_keys_valid_until=until)
