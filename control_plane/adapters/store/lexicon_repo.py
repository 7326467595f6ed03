"""Pronunciation lexicons (PLS documents), per tenant, by name."""

from __future__ import annotations

import sqlalchemy as sa

from control_plane.adapters.store.database import Database
from control_plane.adapters.store.rows import LexiconRow, as_values, row_to, utcnow
from control_plane.adapters.store.tables import lexicons

MUTABLE = {"language", "content", "lexemes", "size_bytes", "apply_by_default"}


class LexiconRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, tenant_id: str, row: LexiconRow) -> LexiconRow:
        if str(row.tenant_id) != str(tenant_id):
            raise ValueError("a lexicon is created for the tenant that owns it")
        row.created_at = row.updated_at = utcnow()
        async with self.db.tenant(tenant_id) as conn:
            await conn.execute(lexicons.insert().values(**as_values(row)))
        return row

    async def get(self, tenant_id: str, name: str) -> LexiconRow | None:
        async with self.db.tenant(tenant_id) as conn:
            row = (await conn.execute(sa.select(lexicons).where(lexicons.c.tenant_id == tenant_id,
                                                                lexicons.c.name == name))).mappings().first()
        return row_to(LexiconRow, row) if row else None

    async def list(self, tenant_id: str) -> list[LexiconRow]:
        async with self.db.tenant(tenant_id) as conn:
            rows = (await conn.execute(sa.select(lexicons).where(lexicons.c.tenant_id == tenant_id)
                                       .order_by(lexicons.c.name))).mappings()
            return [row_to(LexiconRow, r) for r in rows]

    async def count(self, tenant_id: str) -> int:
        async with self.db.tenant(tenant_id) as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(lexicons)
                                           .where(lexicons.c.tenant_id == tenant_id))).scalar_one())

    async def update(self, tenant_id: str, name: str, **fields: object) -> LexiconRow | None:
        unknown = set(fields) - MUTABLE
        if unknown:
            raise ValueError(f"not lexicon fields: {sorted(unknown)}")
        values: dict[str, object] = {**fields, "updated_at": utcnow(), "version": lexicons.c.version + 1}
        where = sa.and_(lexicons.c.tenant_id == tenant_id, lexicons.c.name == name)
        async with self.db.tenant(tenant_id) as conn:
            done = await conn.execute(lexicons.update().where(where).values(**values))
            if not done.rowcount:
                return None
            row = (await conn.execute(sa.select(lexicons).where(where))).mappings().first()
        return row_to(LexiconRow, row) if row else None

    async def delete(self, tenant_id: str, name: str) -> bool:
        async with self.db.tenant(tenant_id) as conn:
            done = await conn.execute(lexicons.delete().where(lexicons.c.tenant_id == tenant_id,
                                                              lexicons.c.name == name))
        return bool(done.rowcount)
