"""API-key authentication: 401 JSON for missing or wrong keys; an address that keeps guessing gets 429."""

from __future__ import annotations

from control_plane.adapters.limits import AUTH_FAILURES
from tests.control_plane.conftest import admin_headers, bearer, fresh_client_ip


async def test_missing_and_wrong_keys_are_401_json(api):
    for headers in ({}, bearer("tts_" + "A" * 43), bearer("garbage"), {"Authorization": "Basic abc"}):
        r = await api.client.get("/v1/tenant/config", headers=headers)
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "unauthorized" and err["request_id"] == r.headers["x-request-id"]
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_every_tenant_route_requires_a_key(api):
    for method, path in (("GET", "/v1/voices"), ("POST", "/v1/synthesize"), ("GET", "/v1/tenant/usage"),
                         ("POST", "/v1/ssml/validate"), ("POST", "/v1/audio/speech")):
        r = await api.client.request(method, path, json={})
        assert r.status_code == 401, path


async def test_repeated_failures_from_one_address_are_throttled(api):
    _, key = await api.tenant()
    for _ in range(AUTH_FAILURES.amount):
        assert (await api.client.get("/v1/tenant/config", headers=bearer("tts_wrong-key-000000000"))).status_code == 401
    blocked = await api.client.get("/v1/tenant/config", headers=bearer("tts_wrong-key-000000000"))
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_auth_failures"
    assert int(blocked.headers["retry-after"]) >= 1
    # The block is per address: the same valid key from elsewhere still works.
    from httpx import ASGITransport, AsyncClient

    other = AsyncClient(transport=ASGITransport(api.app, client=(fresh_client_ip(), 1)), base_url="http://gw")
    async with other:
        assert (await other.get("/v1/tenant/config", headers=bearer(key))).status_code == 200


async def test_key_lookups_are_cached_and_changes_here_apply_at_once(api):
    tenant_id, key = await api.tenant()
    repo = api.services.store.keys
    lookups = 0
    real = repo.lookup

    async def counted(key_hash):
        nonlocal lookups
        lookups += 1
        return await real(key_hash)

    repo.lookup = counted
    try:
        for _ in range(5):
            assert (await api.client.get("/v1/tenant/config", headers=bearer(key))).status_code == 200
        assert lookups == 1  # one store round trip, then AUTH_CACHE_TTL_S of reuse
        suspended = await api.client.post(f"/admin/v1/tenants/{tenant_id}/suspend", headers=admin_headers())
        assert suspended.status_code == 200, suspended.text
        refused = await api.client.get("/v1/tenant/config", headers=bearer(key))
        assert refused.status_code == 401 and lookups == 2  # the change cleared the cache: read again
    finally:
        repo.lookup = real
