"""Per-tenant limits on both backends: request windows with X-RateLimit-* headers and 429 +
Retry-After, shared between two app instances on one Redis; concurrent-stream slots; monthly quota."""

from __future__ import annotations

import asyncio
import time

import pytest

from control_plane.adapters.limits import Limiter
from control_plane.errors import ServiceError
from control_plane.services.tenants import TenantContext, TenantLimits
from tests.control_plane.conftest import bearer, settings_for, start_api


async def test_requests_per_minute_with_headers_then_429(api):
    _, key = await api.tenant(requests_per_minute=3)
    seen = []
    for _ in range(3):
        r = await api.client.get("/v1/tenant/config", headers=bearer(key))
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit"] == "3"
        seen.append(int(r.headers["x-ratelimit-remaining"]))
        assert 0 < int(r.headers["x-ratelimit-reset"]) <= 60
    assert seen == [2, 1, 0]
    r = await api.client.get("/v1/tenant/config", headers=bearer(key))
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-remaining"] == "0"
    metrics = (await api.client.get("/metrics")).text
    assert 'tts_rate_limited_total{limit="minute"}' in metrics


async def test_limits_are_per_tenant(api):
    _, key_a = await api.tenant(requests_per_minute=1)
    _, key_b = await api.tenant(requests_per_minute=1)
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key_a))).status_code == 200
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key_a))).status_code == 429
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key_b))).status_code == 200


async def test_hour_window_applies_too(api):
    _, key = await api.tenant(requests_per_minute=100, requests_per_hour=2)
    for _ in range(2):
        assert (await api.client.get("/v1/tenant/config", headers=bearer(key))).status_code == 200
    r = await api.client.get("/v1/tenant/config", headers=bearer(key))
    assert r.status_code == 429 and "hour" in r.json()["error"]["message"]


async def test_two_replicas_share_the_limit_through_redis(api, backend):
    if backend["name"] != "postgres_redis":
        pytest.skip("replicas share limits only through Redis")
    _, key = await api.tenant(requests_per_minute=4)
    app2, lifespan2, client2 = await start_api(settings_for(backend))
    try:
        codes = []
        for i in range(6):
            client = api.client if i % 2 == 0 else client2
            codes.append((await client.get("/v1/tenant/config", headers=bearer(key))).status_code)
        assert codes == [200, 200, 200, 200, 429, 429]
    finally:
        await client2.aclose()
        await lifespan2.__aexit__(None, None, None)


def _tenant(tenant_id: str, **limits: int) -> TenantContext:
    return TenantContext(tenant_id=tenant_id, name=tenant_id, limits=TenantLimits(**limits))


async def test_concurrent_stream_slots(api):
    limiter: Limiter = api.services.limiter
    tenant = _tenant(f"streams-{time.time_ns()}", max_concurrent_streams=2)
    async with limiter.stream_slot(tenant), limiter.stream_slot(tenant):
        assert await limiter.streams_held(tenant.tenant_id) == 2
        with pytest.raises(ServiceError) as info:
            async with limiter.stream_slot(tenant):
                pass
        assert info.value.status_code == 429 and info.value.code == "too_many_streams"
    assert await limiter.streams_held(tenant.tenant_id) == 0
    async with limiter.stream_slot(tenant):  # released slots are free again
        pass


async def test_a_crashed_replicas_slots_expire(api, backend):
    if backend["name"] != "postgres_redis":
        pytest.skip("lease expiry is the Redis slot store's")
    limiter: Limiter = api.services.limiter
    tenant = _tenant(f"lease-{time.time_ns()}", max_concurrent_streams=1)
    key = f"tts:streams:{tenant.tenant_id}"
    # A slot whose lease ran out (its replica stopped renewing) does not count.
    await limiter.redis.zadd(key, {"dead-replica-slot": time.time() - 1})
    async with limiter.stream_slot(tenant):
        assert await limiter.redis.zscore(key, "dead-replica-slot") is None


async def test_monthly_character_quota(api):
    limiter: Limiter = api.services.limiter
    tenant_id, _ = await api.tenant(monthly_characters=100)
    tenant = _tenant(tenant_id, monthly_characters=100)
    assert await limiter.charge_characters(tenant, 60) == 60
    with pytest.raises(ServiceError) as info:
        await limiter.charge_characters(tenant, 41)
    assert info.value.status_code == 429 and info.value.code == "quota_exceeded"
    assert int(info.value.headers["Retry-After"]) > 0
    assert await limiter.charge_characters(tenant, 40) == 100  # the refused charge was not counted


async def test_quota_counter_starts_from_recorded_usage(api):
    from control_plane.services.usage import UsageRecord

    tenant_id, _ = await api.tenant(monthly_characters=100)
    await api.services.usage.record(UsageRecord(tenant_id=tenant_id, request_id="r1", endpoint="synthesize",
                                                characters=90))
    fresh = Limiter(api.services.redis, api.settings.redis_url, month_usage=api.services.usage.characters_this_month)
    with pytest.raises(ServiceError):
        await fresh.charge_characters(_tenant(tenant_id, monthly_characters=100), 11)


async def test_quota_is_enforced_over_http(api):
    _, key = await api.tenant(monthly_characters=5)
    r = await api.client.post("/v1/synthesize", headers=bearer(key), json={"text": "more than five characters"})
    # Voice resolution and planning do not need Triton; the charge comes before any synthesis.
    assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"


async def test_concurrent_hits_do_not_exceed_the_limit(api):
    _, key = await api.tenant(requests_per_minute=5)
    codes = await asyncio.gather(*(api.client.get("/v1/tenant/config", headers=bearer(key)) for _ in range(8)))
    assert sorted(r.status_code for r in codes).count(200) <= 5
