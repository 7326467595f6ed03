"""Admin API (/admin/v1, bearer TTS_ADMIN_TOKEN; 404 when the token is not configured):
tenants with their limits, API keys (shown once), rotation with a grace period, suspension,
revocation; links to the monitoring the console shows."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from control_plane.api.deps import Services, require_admin
from control_plane.services.tenants import MAX_GRACE_SECONDS, tenant_view
from control_plane.services.tiers import CUSTOM_TIER, TIERS, TierName
from control_plane.services.voice_map import MAX_VOICE_MAP_ENTRIES, OPENAI_VOICES, verify_voice_map
from tts_contract.fairness import WEIGHT_RANGE

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require_admin)])


class LimitFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(None, ge=1, le=1_000_000, description="Default 100")
    requests_per_hour: int | None = Field(None, ge=1, le=100_000_000, description="Default 5,000")
    requests_per_day: int | None = Field(None, ge=1, le=1_000_000_000, description="Default 50,000")
    max_concurrent_streams: int | None = Field(None, ge=1, le=10_000, description="Default 10")
    monthly_characters: int | None = Field(None, ge=0, le=10**12, description="Default 1,000,000")
    max_voices: int | None = Field(None, ge=0, le=100_000, description="Default 10")


TIER_DOC = ("Priority tier, setting the tenant's weight in the fair shares of the engines under contention: "
            + ", ".join(f"{name} = {weight:g}" for name, weight in TIERS.items()) + ". Default standard.")
WEIGHT_DOC = (f"Explicit weight ({WEIGHT_RANGE[0]:g} to {WEIGHT_RANGE[1]:g}) instead of the tier's; with no tier "
              f"named the tier reads {CUSTOM_TIER!r}. Under contention served audio follows the weights.")


class ShareFields(BaseModel):
    tier: TierName | None = Field(None, description=TIER_DOC)
    weight: float | None = Field(None, ge=WEIGHT_RANGE[0], le=WEIGHT_RANGE[1], description=WEIGHT_DOC)


VOICE_MAP_DOC = (f"OpenAI voice name ({', '.join(OPENAI_VOICES)}), Deepgram Aura model name (aura-2-thalia-en, ...) "
                 "or 'cartesia:<Cartesia voice id>' -> one of the tenant's voice ids; used by POST /v1/audio/speech, "
                 "/v1/speak and the Cartesia-compatible routes. Replaces the whole map; {} clears it.")


class TenantUpdate(LimitFields, ShareFields):
    voice_map: dict[str, str] | None = Field(None, max_length=MAX_VOICE_MAP_ENTRIES, description=VOICE_MAP_DOC,
                                             examples=[{"nova": "5b0c7a52-8d2e-4c1f-9a7e-1f0f3c2b9d10"}])


class TenantCreate(LimitFields, ShareFields):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]*$")


class Limits(BaseModel):
    requests_per_minute: int
    requests_per_hour: int
    requests_per_day: int
    max_concurrent_streams: int
    monthly_characters: int
    max_voices: int


class Tenant(BaseModel):
    tenant_id: str
    name: str
    status: str
    limits: Limits
    voice_map: dict[str, str] = Field(default_factory=dict,
                                      description="OpenAI voice, Deepgram model or provider:voice -> voice id")
    tier: str = Field(description=f"Priority tier ({', '.join(TIERS)} or {CUSTOM_TIER})")
    weight: float = Field(description="Weight in the fair shares of the engines under contention")
    created_at: str | None
    updated_at: str | None


class TenantWithKey(Tenant):
    api_key: str = Field(description="Shown once: only its hash is stored")


class TenantList(BaseModel):
    tenants: list[Tenant]


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(0, ge=0, le=MAX_GRACE_SECONDS,
                               description="How long the keys valid now keep working; 0 = refused at once")


class RotatedKey(BaseModel):
    tenant_id: str
    api_key: str = Field(description="Shown once: only its hash is stored")
    previous_keys_valid_until: datetime | None


@router.post("/tenants", status_code=201, response_model=TenantWithKey, summary="Create a tenant and its first key")
async def create_tenant(body: TenantCreate, services: Services) -> TenantWithKey:
    limits = body.model_dump(exclude={"name"}, exclude_none=True)
    row, key = await services.tenants.create(body.name, **limits)
    return TenantWithKey(**tenant_view(row), api_key=key)


@router.get("/tenants", response_model=TenantList, summary="All tenants")
async def list_tenants(services: Services) -> TenantList:
    return TenantList(tenants=[Tenant(**tenant_view(r)) for r in await services.tenants.list()])


@router.get("/tenants/{tenant_id}", response_model=Tenant, summary="One tenant")
async def get_tenant(tenant_id: str, services: Services) -> Tenant:
    return Tenant(**tenant_view(await services.tenants.get(tenant_id)))


@router.patch("/tenants/{tenant_id}", response_model=Tenant,
              summary="Change a tenant's limits, tier, weight or voice map")
async def update_tenant(tenant_id: str, body: TenantUpdate, services: Services) -> Tenant:
    checked = None
    if body.voice_map is not None:  # checked before anything changes: a bad map leaves the limits as they were
        checked = await verify_voice_map(services.voices, (await services.tenants.get(tenant_id)).id, body.voice_map)
    row = await services.tenants.update(tenant_id, **body.model_dump(exclude={"voice_map", "tier", "weight"},
                                                                     exclude_none=True))
    if body.tier is not None or body.weight is not None:
        row = await services.tenants.set_tier(row.id, body.tier, body.weight)
    if checked is not None:
        row = await services.tenants.set_voice_map(row.id, checked)
    return Tenant(**tenant_view(row))


@router.post("/tenants/{tenant_id}/keys/rotate", response_model=RotatedKey, summary="Issue a new key")
async def rotate_key(tenant_id: str, services: Services, body: RotateBody | None = None) -> RotatedKey:
    key, until = await services.tenants.rotate_key(tenant_id, (body or RotateBody.model_validate({})).grace_seconds)
    return RotatedKey(tenant_id=tenant_id, api_key=key, previous_keys_valid_until=until)


@router.post("/tenants/{tenant_id}/suspend", response_model=Tenant,
             summary="Suspend a tenant: its keys are refused until it is resumed; nothing is deleted")
async def suspend_tenant(tenant_id: str, services: Services) -> Tenant:
    return Tenant(**tenant_view(await services.tenants.set_suspended(tenant_id, True)))


@router.post("/tenants/{tenant_id}/resume", response_model=Tenant, summary="Resume a suspended tenant")
async def resume_tenant(tenant_id: str, services: Services) -> Tenant:
    return Tenant(**tenant_view(await services.tenants.set_suspended(tenant_id, False)))


class DashboardLink(BaseModel):
    title: str
    url: str


class MonitoringLinks(BaseModel):
    grafana_url: str | None = Field(description="GRAFANA_URL; null when not configured")
    dashboards: list[DashboardLink]


# The dashboard shipped in deploy/grafana (its uid is fixed there).
GRAFANA_DASHBOARDS = (("Capacity", "tts-gateway-capacity"),)


@router.get("/links", response_model=MonitoringLinks, summary="Monitoring links (Grafana) when configured")
async def links(services: Services) -> MonitoringLinks:
    base = services.settings.grafana_url.rstrip("/")
    dashboards = [DashboardLink(title=t, url=f"{base}/d/{uid}") for t, uid in GRAFANA_DASHBOARDS] if base else []
    return MonitoringLinks(grafana_url=base or None, dashboards=dashboards)


@router.post("/tenants/{tenant_id}/revoke", response_model=Tenant, summary="Revoke a tenant and all its keys")
async def revoke_tenant(tenant_id: str, services: Services) -> Tenant:
    return Tenant(**tenant_view(await services.tenants.revoke(tenant_id)))


@router.delete("/tenants/{tenant_id}", response_model=Tenant, summary="Revoke a tenant (same as POST .../revoke)")
async def delete_tenant(tenant_id: str, services: Services) -> Tenant:
    return Tenant(**tenant_view(await services.tenants.revoke(tenant_id)))
