"""Usage records and their per-day aggregates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from control_plane.adapters.store.database import Database
from control_plane.adapters.store.rows import UsageRow, as_values
from control_plane.adapters.store.tables import usage_records as u


class UsageRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, row: UsageRow) -> None:
        async with self.db.tenant(row.tenant_id) as conn:
            await conn.execute(u.insert().values(**as_values(row)))

    async def daily(self, tenant_id: str, start: date, end: date) -> list[dict[str, Any]]:
        """Totals per UTC day in [start, end], days without requests left out."""
        q = (
            sa.select(
                u.c.day,
                sa.func.count().label("requests"),
                sa.func.coalesce(sa.func.sum(u.c.characters), 0).label("characters"),
                sa.func.coalesce(sa.func.sum(u.c.audio_seconds), 0.0).label("audio_seconds"),
                sa.func.coalesce(sa.func.sum(sa.case((u.c.cache_hit, 1), else_=0)), 0).label("cache_hits"),
                sa.func.coalesce(sa.func.sum(sa.case((u.c.status_code >= 400, 1), else_=0)), 0).label("errors"),
                sa.func.coalesce(sa.func.avg(u.c.latency_ms), 0.0).label("avg_latency_ms"),
            )
            .where(u.c.tenant_id == tenant_id, u.c.day >= start, u.c.day <= end)
            .group_by(u.c.day).order_by(u.c.day)
        )
        async with self.db.tenant(tenant_id) as conn:
            rows = (await conn.execute(q)).mappings().all()
        out = []
        for r in rows:
            day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
            out.append({"date": day.isoformat(), "requests": int(r["requests"]), "characters": int(r["characters"]),
                        "audio_seconds": round(float(r["audio_seconds"]), 3), "cache_hits": int(r["cache_hits"]),
                        "errors": int(r["errors"]), "avg_latency_ms": round(float(r["avg_latency_ms"]), 1)})
        return out

    async def characters_since(self, tenant_id: str, since: datetime) -> int:
        q = sa.select(sa.func.coalesce(sa.func.sum(u.c.characters), 0)).where(
            u.c.tenant_id == tenant_id, u.c.created_at >= since)
        async with self.db.tenant(tenant_id) as conn:
            return int((await conn.execute(q)).scalar_one())
