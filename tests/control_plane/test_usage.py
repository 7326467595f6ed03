"""Usage records per request and per-day aggregation, with range validation and tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane.services.usage import UsageRecord
from tests.control_plane.conftest import bearer


async def _record(api, tenant_id: str, when: datetime, **fields) -> None:
    await api.services.usage.record(UsageRecord(tenant_id=tenant_id, request_id="r", endpoint="synthesize",
                                                created_at=when, **fields))


async def test_usage_is_aggregated_per_day(api):
    tenant_id, key = await api.tenant()
    other_id, _ = await api.tenant()
    d1 = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    d2 = datetime(2026, 3, 3, 0, 1, tzinfo=UTC)
    await _record(api, tenant_id, d1, characters=10, audio_seconds=1.5, cache_hit=True, latency_ms=100)
    await _record(api, tenant_id, d1, characters=5, audio_seconds=0.5, latency_ms=300)
    await _record(api, tenant_id, d2, characters=7, audio_seconds=2.0, status_code=422, latency_ms=10)
    await _record(api, other_id, d1, characters=1000)  # another tenant's: never counted here
    await _record(api, tenant_id, datetime(2026, 4, 1, tzinfo=UTC), characters=99)  # outside the range

    r = await api.client.get("/v1/tenant/usage", params={"start_date": "2026-03-01", "end_date": "2026-03-31"},
                             headers=bearer(key))
    assert r.status_code == 200
    body = r.json()
    assert [d["date"] for d in body["days"]] == ["2026-03-01", "2026-03-03"]
    first, second = body["days"]
    assert (first["requests"], first["characters"], first["cache_hits"], first["errors"]) == (2, 15, 1, 0)
    assert first["audio_seconds"] == 2.0 and first["avg_latency_ms"] == 200.0
    assert (second["requests"], second["characters"], second["errors"]) == (1, 7, 1)
    assert body["totals"]["characters"] == 22 and body["totals"]["requests"] == 3


async def test_requests_are_recorded(api):
    tenant_id, key = await api.tenant(monthly_characters=3)
    await api.client.post("/v1/synthesize", headers=bearer(key), json={"text": "refused by the quota"})
    today = datetime.now(UTC).date().isoformat()
    body = (await api.client.get("/v1/tenant/usage", params={"start_date": today, "end_date": today},
                                 headers=bearer(key))).json()
    assert body["totals"]["requests"] == 1 and body["totals"]["errors"] == 1


async def test_range_is_validated(api):
    _, key = await api.tenant()
    cases = [
        ({"start_date": "2026-03-05", "end_date": "2026-03-01"}, "end_date"),
        ({"start_date": "2025-01-01", "end_date": "2026-03-01"}, "end_date"),
        ({"start_date": "March 1st", "end_date": "2026-03-01"}, "start_date"),
        ({"start_date": "2026-02-30"}, "start_date"),
    ]
    for params, field in cases:
        r = await api.client.get("/v1/tenant/usage", params=params, headers=bearer(key))
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] == "validation_error" and r.json()["error"]["message"].startswith(field)
    today = datetime.now(UTC).date()
    ok = await api.client.get("/v1/tenant/usage", headers=bearer(key), params={
        "start_date": (today - timedelta(days=365)).isoformat(), "end_date": today.isoformat()})
    assert ok.status_code == 200


async def test_a_failing_store_never_fails_the_caller(api):
    class Broken:
        async def insert(self, row):
            raise RuntimeError("database down")

    service = api.services.usage
    saved, service.store = service.store, type("S", (), {"usage": Broken()})()
    try:
        await service.record(UsageRecord(tenant_id="x", request_id="r", endpoint="e"))
    finally:
        service.store = saved
