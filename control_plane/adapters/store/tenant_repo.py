"""Tenants and their API keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from control_plane.adapters.store.database import Database
from control_plane.adapters.store.rows import ApiKeyRow, TenantRow, as_values, row_to, utcnow
from control_plane.adapters.store.tables import api_keys, tenants

LIMIT_FIELDS = ("requests_per_minute", "requests_per_hour", "requests_per_day", "max_concurrent_streams",
                "monthly_characters", "max_voices")


class TenantRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, tenant: TenantRow, key: ApiKeyRow) -> TenantRow:
        """The tenant and its first key, together or not at all."""
        now = utcnow()
        tenant.created_at = tenant.updated_at = now
        key.created_at = now
        async with self.db.admin() as conn:
            await conn.execute(tenants.insert().values(**as_values(tenant)))
            await conn.execute(api_keys.insert().values(**as_values(key)))
        return tenant

    async def get(self, tenant_id: str, *, admin: bool = False) -> TenantRow | None:
        """As the tenant itself (its config endpoint) or, with admin=True, as tenant management."""
        scope = self.db.admin() if admin else self.db.tenant(tenant_id)
        async with scope as conn:
            row = (await conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id))).mappings().first()
        return row_to(TenantRow, row) if row else None

    async def find_by_name(self, name: str) -> TenantRow | None:
        async with self.db.admin() as conn:
            row = (await conn.execute(sa.select(tenants).where(tenants.c.name == name))).mappings().first()
        return row_to(TenantRow, row) if row else None

    async def list(self) -> list[TenantRow]:
        async with self.db.admin() as conn:
            rows = (await conn.execute(sa.select(tenants).order_by(tenants.c.created_at, tenants.c.id))).mappings()
            return [row_to(TenantRow, r) for r in rows]

    async def update(self, tenant_id: str, **fields: object) -> TenantRow | None:
        unknown = set(fields) - set(LIMIT_FIELDS) - {"name", "status", "voice_map", "tier", "weight"}
        if unknown:
            raise ValueError(f"not tenant fields: {sorted(unknown)}")
        async with self.db.admin() as conn:
            if fields:
                await conn.execute(tenants.update().where(tenants.c.id == tenant_id)
                                   .values(**fields, updated_at=utcnow()))
            row = (await conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id))).mappings().first()
        return row_to(TenantRow, row) if row else None

    async def revoke(self, tenant_id: str) -> TenantRow | None:
        """Status revoked and every key revoked, in one transaction."""
        now = utcnow()
        async with self.db.admin() as conn:
            done = await conn.execute(tenants.update().where(tenants.c.id == tenant_id)
                                      .values(status="revoked", updated_at=now))
            if not done.rowcount:
                return None
            await conn.execute(api_keys.update()
                               .where(api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
                               .values(revoked_at=now))
            row = (await conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id))).mappings().first()
        return row_to(TenantRow, row)


class ApiKeyRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def lookup(self, key_hash: str) -> tuple[ApiKeyRow, TenantRow] | None:
        """The key with this hash and its tenant. On Postgres the transaction can see only the key row
        whose hash it already holds (policy on app.key_hash), then only that key's tenant."""
        async with self.db.key_lookup(key_hash) as conn:
            key = (await conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash))).mappings().first()
            if key is None:
                return None
            await self.db.set_tenant(conn, str(key["tenant_id"]))
            tenant = (await conn.execute(sa.select(tenants).where(tenants.c.id == key["tenant_id"]))).mappings().first()
        if tenant is None:
            return None
        return row_to(ApiKeyRow, key), row_to(TenantRow, tenant)

    async def list(self, tenant_id: str) -> list[ApiKeyRow]:
        async with self.db.admin() as conn:
            rows = (await conn.execute(sa.select(api_keys).where(api_keys.c.tenant_id == tenant_id)
                                       .order_by(api_keys.c.created_at))).mappings()
            return [row_to(ApiKeyRow, r) for r in rows]

    async def rotate(self, tenant_id: str, new_key: ApiKeyRow, grace_until: datetime | None) -> bool:
        """Add `new_key`; keys valid now stay valid until `grace_until` (None: refused at once)."""
        now = utcnow()
        new_key.created_at = now
        async with self.db.admin() as conn:
            found = (await conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant_id,
                                                                        tenants.c.status == "active"))).first()
            if found is None:
                return False
            live = sa.and_(api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
            if grace_until is None:
                await conn.execute(api_keys.update().where(live).values(revoked_at=now))
            else:
                # A key already due to expire sooner keeps its earlier end.
                await conn.execute(api_keys.update().where(
                    live, sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > grace_until)
                ).values(expires_at=grace_until))
            await conn.execute(api_keys.insert().values(**as_values(new_key)))
        return True
