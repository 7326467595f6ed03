"""Tenants and their keys: create (the key is returned once), list, update limits, rotate with a
grace period, revoke; authentication of a presented key. (The dev tenant of `tts-gateway up` is
devtools.dev_tenant.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from control_plane.adapters.store import ApiKeyRow, Store, TenantRow
from control_plane.adapters.store.tenant_repo import LIMIT_FIELDS
from control_plane.errors import Conflict, InvalidInput, NotFound
from control_plane.ids import is_uuid
from control_plane.services import tiers
from control_plane.services.keys import display_prefix, generate_key, hash_key, looks_like_key
from control_plane.services.voice_map import check_voice_map, dump_voice_map, parse_voice_map
from control_plane.settings import Settings
from tts_contract.fairness import Share

MAX_GRACE_SECONDS = 30 * 24 * 3600
AUTH_CACHE_MAX_KEYS = 10_000


# The default limits are TenantRow's: one place to change them.
_ROW_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TenantRow)}


@dataclass(frozen=True)
class TenantLimits:
    requests_per_minute: int = _ROW_DEFAULTS["requests_per_minute"]
    requests_per_hour: int = _ROW_DEFAULTS["requests_per_hour"]
    requests_per_day: int = _ROW_DEFAULTS["requests_per_day"]
    max_concurrent_streams: int = _ROW_DEFAULTS["max_concurrent_streams"]
    monthly_characters: int = _ROW_DEFAULTS["monthly_characters"]
    max_voices: int = _ROW_DEFAULTS["max_voices"]

    @classmethod
    def of(cls, row: TenantRow) -> TenantLimits:
        return cls(**{f: int(getattr(row, f)) for f in LIMIT_FIELDS})


@dataclass(frozen=True)
class TenantContext:
    """Who a request is from: what routes and services receive from `get_tenant`."""

    tenant_id: str
    name: str
    limits: TenantLimits
    voice_map: dict[str, str] = field(default_factory=dict)  # OpenAI voice name -> voice id
    tier: str = tiers.DEFAULT_TIER
    weight: float = tiers.TIERS[tiers.DEFAULT_TIER]

    @property
    def share(self) -> Share:
        """This tenant's key and weight in the engines' fair shares."""
        return Share(self.tenant_id, self.weight)


def tenant_view(row: TenantRow) -> dict[str, Any]:
    return {"tenant_id": row.id, "name": row.name, "status": row.status, "limits": asdict(TenantLimits.of(row)),
            "voice_map": parse_voice_map(row.voice_map), "tier": row.tier, "weight": row.weight,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "updated_at": row.updated_at.isoformat() if row.updated_at else None}


class TenantService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.pepper = settings.api_key_pepper
        # key hash -> (when read, the key and its tenant): every request authenticates, and a store round
        # trip per request is most of what a refused or cached request costs. Changes made through this
        # replica clear it at once; others' within AUTH_CACHE_TTL_S.
        self._auth_ttl_s = settings.auth_cache_ttl_s
        self._auth_cache: dict[str, _Lookup] = {}

    def _new_key(self, tenant_id: str) -> tuple[str, ApiKeyRow]:
        key = generate_key()
        return key, ApiKeyRow(id=str(uuid.uuid4()), tenant_id=tenant_id, key_hash=hash_key(key, self.pepper),
                              prefix=display_prefix(key))

    async def create(self, name: str, *, tier: str | None = None, weight: float | None = None,
                     **limits: int | None) -> tuple[TenantRow, str]:
        name = name.strip()
        if not name:
            raise InvalidInput("validation_error", "name: must not be empty")
        if await self.store.tenants.find_by_name(name) is not None:
            raise Conflict("tenant_exists", f"a tenant named {name!r} already exists")
        values = {**asdict(TenantLimits()), **{k: v for k, v in limits.items() if v is not None}}
        tenant_id = str(uuid.uuid4())
        key, key_row = self._new_key(tenant_id)
        tier, weight = _tier(tier, weight)
        row = TenantRow(id=tenant_id, name=name, status="active", tier=tier, weight=weight, **values)
        try:
            await self.store.tenants.create(row, key_row)
        except Exception as exc:
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise Conflict("tenant_exists", f"a tenant named {name!r} already exists") from None
            raise
        return row, key

    async def get(self, tenant_id: str) -> TenantRow:
        row = await self.store.tenants.get(tenant_id, admin=True) if is_uuid(tenant_id) else None
        if row is None:
            raise NotFound("tenant_not_found", f"tenant {tenant_id} not found")
        return row

    async def resolve(self, ref: str) -> TenantRow:
        """A tenant by id or by name (the CLI accepts either)."""
        row = await self.store.tenants.get(ref, admin=True) if is_uuid(ref) else None
        row = row or await self.store.tenants.find_by_name(ref)
        if row is None:
            raise NotFound("tenant_not_found", f"tenant {ref} not found")
        return row

    async def list(self) -> list[TenantRow]:
        return await self.store.tenants.list()

    async def update(self, tenant_id: str, **limits: int | None) -> TenantRow:
        await self.get(tenant_id)
        fields = {k: v for k, v in limits.items() if v is not None}
        return await self._update(tenant_id, fields)

    async def set_tier(self, tenant_id: str, tier: str | None, weight: float | None) -> TenantRow:
        """A tier (its default weight), an explicit weight, or both (see services/tiers.resolve)."""
        row = await self.get(tenant_id)
        tier, weight = _tier(tier, weight, (row.tier, row.weight))
        return await self._update(row.id, {"tier": tier, "weight": weight})

    async def set_voice_map(self, tenant_id: str, voice_map: dict[str, str]) -> TenantRow:
        """Replace the whole voice map ({} clears it). Its voices must be the tenant's own or built-in
        ones: the caller checks that (services/voice_map.verify_voice_map), as it knows the voices."""
        await self.get(tenant_id)
        return await self._update(tenant_id, {"voice_map": dump_voice_map(check_voice_map(voice_map))})

    def forget(self) -> None:
        """Drop the cached authentications (a tenant or key changed)."""
        self._auth_cache.clear()

    async def _update(self, tenant_id: str, fields: Mapping[str, object]) -> TenantRow:
        self.forget()
        row = await self.store.tenants.update(tenant_id, **fields)
        if row is None:
            raise NotFound("tenant_not_found", f"tenant {tenant_id} not found")
        return row

    async def rotate_key(self, tenant_id: str, grace_seconds: int = 0) -> tuple[str, datetime | None]:
        """A new key; the keys valid now stay valid for `grace_seconds` more (0: refused at once)."""
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise InvalidInput("validation_error", f"grace_seconds: must be between 0 and {MAX_GRACE_SECONDS}")
        row = await self.get(tenant_id)
        if row.status != "active":
            raise Conflict("tenant_revoked", f"tenant {tenant_id} is revoked")
        key, key_row = self._new_key(row.id)
        until = datetime.now(UTC) + timedelta(seconds=grace_seconds) if grace_seconds else None
        self.forget()
        if not await self.store.keys.rotate(row.id, key_row, until):
            raise Conflict("tenant_revoked", f"tenant {tenant_id} is revoked")
        return key, until

    async def set_suspended(self, tenant_id: str, suspended: bool) -> TenantRow:
        """Suspend (every key refused, nothing deleted) or resume a tenant; a revoked tenant stays revoked."""
        row = await self.get(tenant_id)
        if row.status == "revoked":
            raise Conflict("tenant_revoked", f"tenant {tenant_id} is revoked")
        self.forget()
        updated = await self.store.tenants.update(tenant_id, status="suspended" if suspended else "active")
        if updated is None:
            raise NotFound("tenant_not_found", f"tenant {tenant_id} not found")
        return updated

    async def revoke(self, tenant_id: str) -> TenantRow:
        await self.get(tenant_id)
        self.forget()
        row = await self.store.tenants.revoke(tenant_id)
        if row is None:
            raise NotFound("tenant_not_found", f"tenant {tenant_id} not found")
        return row

    async def authenticate(self, key: str) -> TenantContext | None:
        """The active tenant a presented key belongs to, or None (unknown, expired, revoked)."""
        if not looks_like_key(key):
            return None
        key_hash = hash_key(key, self.pepper)
        now = time.monotonic()
        lookup = self._fresh(key_hash, now)
        if lookup is None:
            found = await self.store.keys.lookup(key_hash)
            if found is None:
                self._auth_cache.pop(key_hash, None)
                return None
            key_row, tenant = found
            lookup = _Lookup(now, key_row, tenant, _context(tenant))
            if self._auth_ttl_s > 0:
                if len(self._auth_cache) >= AUTH_CACHE_MAX_KEYS:
                    self._auth_cache.clear()
                self._auth_cache[key_hash] = lookup
        return lookup.valid()

    def cached(self, key: str) -> TenantContext | None:
        """`authenticate` from the cache alone (no store, no await): the tenant of a key this replica read
        within AUTH_CACHE_TTL_S and that is still valid, else None (not known here: ask `authenticate`).
        Revocations apply to it exactly as to `authenticate`."""
        if not looks_like_key(key):
            return None
        lookup = self._fresh(hash_key(key, self.pepper), time.monotonic())
        return None if lookup is None else lookup.valid()

    def _fresh(self, key_hash: str, now: float) -> _Lookup | None:
        """The cached lookup of a key, if it was read within AUTH_CACHE_TTL_S."""
        lookup = self._auth_cache.get(key_hash)
        return lookup if lookup is not None and now - lookup.read_at < self._auth_ttl_s else None


class _Lookup(NamedTuple):
    """A key's lookup: when it was read, the key and its tenant, and the context its requests get."""

    read_at: float
    key: ApiKeyRow
    tenant: TenantRow
    context: TenantContext

    def valid(self) -> TenantContext | None:
        """The context; None for a key expired (rotated) or a tenant not active."""
        if not self.key.valid_at(datetime.now(UTC)) or self.tenant.status != "active":
            return None
        return self.context


def _context(tenant: TenantRow) -> TenantContext:
    return TenantContext(tenant_id=tenant.id, name=tenant.name, limits=TenantLimits.of(tenant),
                         voice_map=parse_voice_map(tenant.voice_map), tier=tenant.tier, weight=float(tenant.weight))


def _tier(tier: str | None, weight: float | None, current: tuple[str, float] | None = None) -> tuple[str, float]:
    try:
        return tiers.resolve(tier, weight, current)
    except ValueError as exc:
        raise InvalidInput("validation_error", str(exc)) from None
