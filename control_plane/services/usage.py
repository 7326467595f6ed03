"""Usage: one record per request (tenant, characters, audio seconds, engine, cache hit, latency,
status), and per-day totals for GET /v1/tenant/usage."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from control_plane.adapters.store import Store, UsageRow
from control_plane.errors import InvalidInput

log = logging.getLogger(__name__)

MAX_RANGE_DAYS = 366


@dataclass
class UsageRecord:
    tenant_id: str
    request_id: str
    endpoint: str
    engine: str | None = None
    voice_id: str | None = None
    characters: int = 0
    audio_seconds: float = 0.0
    cache_hit: bool = False
    latency_ms: int = 0
    status_code: int = 200
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def parse_range(start_date: str | None, end_date: str | None, today: date | None = None) -> tuple[date, date]:
    """Validated [start, end]; defaults: the current month so far. Errors name the field (422)."""
    today = today or datetime.now(UTC).date()

    def parse(name: str, value: str | None, default: date) -> date:
        if value is None or value == "":
            return default
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidInput("validation_error", f"{name}: expected a date as YYYY-MM-DD") from None

    end = parse("end_date", end_date, today)
    start = parse("start_date", start_date, end.replace(day=1))
    if end < start:
        raise InvalidInput("validation_error", "end_date: must not be before start_date")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput("validation_error", f"end_date: the range may span at most {MAX_RANGE_DAYS} days")
    return start, end


class UsageService:
    def __init__(self, store: Store, metrics: Any | None = None) -> None:
        self.store = store
        self.metrics = metrics

    async def record(self, rec: UsageRecord) -> None:
        """Write one record; a failure is logged and swallowed (it must never fail the request)."""
        try:
            created = rec.created_at.astimezone(UTC)
            await self.store.usage.insert(UsageRow(
                id=str(uuid.uuid4()), tenant_id=rec.tenant_id, request_id=(rec.request_id or "")[:64],
                endpoint=rec.endpoint[:64], engine=(rec.engine or None) and rec.engine[:32],
                voice_id=(rec.voice_id or None) and rec.voice_id[:64], characters=int(rec.characters),
                audio_seconds=float(rec.audio_seconds), cache_hit=bool(rec.cache_hit),
                latency_ms=int(rec.latency_ms), status_code=int(rec.status_code), day=created.date(),
                created_at=created,
            ))
        except Exception as exc:  # noqa: BLE001 - usage is best effort by contract
            log.warning("usage record not stored: %s", type(exc).__name__)

    async def daily(self, tenant_id: str, start: date, end: date) -> dict[str, Any]:
        days = await self.store.usage.daily(tenant_id, start, end)
        totals = {k: sum(d[k] for d in days) for k in ("requests", "characters", "cache_hits", "errors")}
        totals["audio_seconds"] = round(sum(d["audio_seconds"] for d in days), 3)
        return {"tenant_id": tenant_id, "start_date": start.isoformat(), "end_date": end.isoformat(),
                "days": days, "totals": totals}

    async def characters_this_month(self, tenant_id: str, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        return await self.store.usage.characters_since(tenant_id, month_start(now))


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)
