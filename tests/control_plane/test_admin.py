"""Admin API on both backends: tenants, limits, key rotation with grace, revocation; disabled without a token."""

from __future__ import annotations

import uuid

import asyncpg

from tests.control_plane.conftest import admin_headers, bearer, past, settings_for, start_api


async def test_create_returns_the_key_once_and_it_authenticates(api):
    r = await api.client.post("/admin/v1/tenants", headers=admin_headers(),
                              json={"name": "acme-" + uuid.uuid4().hex[:6], "requests_per_minute": 7,
                                    "max_voices": 2})
    assert r.status_code == 201
    body = r.json()
    assert body["api_key"].startswith("tts_") and len(body["api_key"]) >= 40
    assert body["limits"]["requests_per_minute"] == 7 and body["limits"]["max_voices"] == 2
    assert body["limits"]["requests_per_hour"] == 5000 and body["limits"]["requests_per_day"] == 50000
    cfg = await api.client.get("/v1/tenant/config", headers=bearer(body["api_key"]))
    assert cfg.status_code == 200 and cfg.json()["tenant_id"] == body["tenant_id"]
    got = await api.client.get(f"/admin/v1/tenants/{body['tenant_id']}", headers=admin_headers())
    assert got.status_code == 200 and "api_key" not in got.json()
    listed = await api.client.get("/admin/v1/tenants", headers=admin_headers())
    assert body["tenant_id"] in {t["tenant_id"] for t in listed.json()["tenants"]}


async def test_create_validates_and_refuses_duplicates(api):
    name = "dup-" + uuid.uuid4().hex[:6]
    assert (await api.client.post("/admin/v1/tenants", headers=admin_headers(), json={"name": name})).status_code == 201
    again = await api.client.post("/admin/v1/tenants", headers=admin_headers(), json={"name": name})
    assert again.status_code == 409 and again.json()["error"]["code"] == "tenant_exists"
    bad = await api.client.post("/admin/v1/tenants", headers=admin_headers(),
                                json={"name": "x" + uuid.uuid4().hex[:4], "requests_per_minute": 0})
    assert bad.status_code == 422 and "requests_per_minute" in bad.json()["error"]["message"]
    unknown = await api.client.post("/admin/v1/tenants", headers=admin_headers(), json={"name": "y", "rpm": 5})
    assert unknown.status_code == 422


async def test_patch_changes_limits_and_they_apply(api):
    tenant_id, key = await api.tenant()
    r = await api.client.patch(f"/admin/v1/tenants/{tenant_id}", headers=admin_headers(),
                               json={"monthly_characters": 1234, "max_concurrent_streams": 3})
    assert r.status_code == 200
    assert r.json()["limits"]["monthly_characters"] == 1234
    cfg = (await api.client.get("/v1/tenant/config", headers=bearer(key))).json()
    assert cfg["limits"]["monthly_characters"] == 1234 and cfg["limits"]["max_concurrent_streams"] == 3
    missing = await api.client.patch(f"/admin/v1/tenants/{uuid.uuid4()}", headers=admin_headers(),
                                     json={"max_voices": 1})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "tenant_not_found"


async def test_tier_and_weight_set_the_tenants_share(api):
    tenant_id, key = await api.tenant(tier="premium")
    tenants = api.services.tenants
    got = (await api.client.get(f"/admin/v1/tenants/{tenant_id}", headers=admin_headers())).json()
    assert (got["tier"], got["weight"]) == ("premium", 3.0)
    assert (await tenants.authenticate(key)).share.weight == 3.0  # what admission and the engines are sent

    async def patch(body: dict) -> dict:
        r = await api.client.patch(f"/admin/v1/tenants/{tenant_id}", headers=admin_headers(), json=body)
        assert r.status_code == 200, r.text
        return r.json()

    assert (await patch({"weight": 2.5}))["tier"] == "custom"
    assert (await tenants.authenticate(key)).share.weight == 2.5  # the change applies at once
    assert {k: v for k, v in (await patch({"tier": "economy"})).items() if k in ("tier", "weight")} == \
        {"tier": "economy", "weight": 0.5}
    assert (await patch({"tier": "enterprise", "weight": 20}))["weight"] == 20
    kept = await patch({"requests_per_minute": 50})
    assert (kept["tier"], kept["weight"], kept["limits"]["requests_per_minute"]) == ("enterprise", 20, 50)
    for bad in ({"tier": "gold"}, {"weight": 0}, {"weight": 101}, {"weight": "lots"}):
        r = await api.client.patch(f"/admin/v1/tenants/{tenant_id}", headers=admin_headers(), json=bad)
        assert r.status_code == 422, bad
        assert list(bad)[0] in r.json()["error"]["message"]
    plain_id, _ = await api.tenant()
    plain = (await api.client.get(f"/admin/v1/tenants/{plain_id}", headers=admin_headers())).json()
    assert (plain["tier"], plain["weight"]) == ("standard", 1.0)


async def test_rotation_honours_the_grace_period_then_refuses_the_old_key(api):
    tenant_id, old = await api.tenant()
    r = await api.client.post(f"/admin/v1/tenants/{tenant_id}/keys/rotate", headers=admin_headers(),
                              json={"grace_seconds": 5})  # room for the two requests in grace on a busy machine
    assert r.status_code == 200
    new = r.json()["api_key"]
    assert new != old and r.json()["previous_keys_valid_until"]
    assert (await api.client.get("/v1/tenant/config", headers=bearer(old))).status_code == 200  # in grace
    assert (await api.client.get("/v1/tenant/config", headers=bearer(new))).status_code == 200
    await past(r.json()["previous_keys_valid_until"])
    expired = await api.client.get("/v1/tenant/config", headers=bearer(old))
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "unauthorized"
    assert (await api.client.get("/v1/tenant/config", headers=bearer(new))).status_code == 200


async def test_rotation_without_grace_refuses_the_old_key_at_once(api):
    tenant_id, old = await api.tenant()
    r = await api.client.post(f"/admin/v1/tenants/{tenant_id}/keys/rotate", headers=admin_headers())
    assert r.status_code == 200 and r.json()["previous_keys_valid_until"] is None
    assert (await api.client.get("/v1/tenant/config", headers=bearer(old))).status_code == 401
    assert (await api.client.get("/v1/tenant/config", headers=bearer(r.json()["api_key"]))).status_code == 200


async def test_revoke_refuses_every_key(api):
    tenant_id, key = await api.tenant()
    r = await api.client.post(f"/admin/v1/tenants/{tenant_id}/revoke", headers=admin_headers())
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key))).status_code == 401
    rotate = await api.client.post(f"/admin/v1/tenants/{tenant_id}/keys/rotate", headers=admin_headers())
    assert rotate.status_code == 409


async def test_keys_are_stored_only_as_hashes(api, backend):
    _, key = await api.tenant()
    secret = key[len("tts_"):]
    if backend["name"] == "embedded":
        raw = b"".join(p.read_bytes() for p in backend["tts_data_dir"].glob("tts_gateway.db*"))
        assert raw and secret.encode() not in raw
    else:
        conn = await asyncpg.connect(backend["pg"].superuser_url)
        try:
            dump = str([dict(r) for r in await conn.fetch("SELECT * FROM api_keys")])
        finally:
            await conn.close()
        assert "key_hash" in dump and secret not in dump


async def test_wrong_admin_token_is_401_json(api):
    r = await api.client.get("/admin/v1/tenants", headers=bearer("not-the-token"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert (await api.client.get("/admin/v1/tenants")).status_code == 401


async def test_admin_api_is_absent_without_a_token(backend):
    app, lifespan, client = await start_api(settings_for(backend, tts_admin_token=""))
    try:
        r = await client.post("/admin/v1/tenants", headers=bearer(""), json={"name": "nope"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (await client.get("/admin/v1/tenants", headers=admin_headers())).status_code == 404
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
