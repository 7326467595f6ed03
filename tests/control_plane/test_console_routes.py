"""Routes the web console needs, on both backends: the static files and their CSP, a tenant rotating
its own key with a grace period, admin suspend/resume, and the monitoring links."""

from __future__ import annotations

import uuid

from tests.control_plane.conftest import admin_headers, bearer, past, settings_for, start_api


async def test_console_files_are_served_with_a_strict_csp(api):
    root = await api.client.get("/console")
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    index = await api.client.get("/console/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in index.text
    csp = index.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert index.headers["x-content-type-options"] == "nosniff"
    script = await api.client.get("/console/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == csp


async def test_console_refuses_paths_outside_its_folder(api):
    for path in ("/console/../settings.py", "/console/%2e%2e/%2e%2e/settings.py", "/console/nothing.js",
                 "/console/..%2fapi%2fconsole.py", "/console/index.html/x"):
        r = await api.client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] in ("not_found",), path


async def test_console_is_not_in_the_openapi_document(api):
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]
    assert "/v1/tenant/keys/rotate" in paths and "/admin/v1/tenants/{tenant_id}/suspend" in paths


async def test_a_tenant_rotates_its_own_key_with_a_grace_period(api):
    tenant_id, old = await api.tenant()
    r = await api.client.post("/v1/tenant/keys/rotate", headers=bearer(old), json={"grace_seconds": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    new = body["api_key"]
    assert body["tenant_id"] == tenant_id and new != old and body["previous_keys_valid_until"]
    assert (await api.client.get("/v1/tenant/config", headers=bearer(new))).status_code == 200
    await past(body["previous_keys_valid_until"])
    refused = await api.client.get("/v1/tenant/config", headers=bearer(old))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert (await api.client.get("/v1/tenant/config", headers=bearer(new))).status_code == 200


async def test_own_rotation_without_grace_refuses_the_old_key_at_once(api):
    _, old = await api.tenant()
    r = await api.client.post("/v1/tenant/keys/rotate", headers=bearer(old))
    assert r.status_code == 200 and r.json()["previous_keys_valid_until"] is None
    assert (await api.client.get("/v1/tenant/config", headers=bearer(old))).status_code == 401
    assert (await api.client.get("/v1/tenant/config", headers=bearer(r.json()["api_key"]))).status_code == 200


async def test_own_rotation_validates_and_needs_a_key(api):
    _, key = await api.tenant()
    for bad in ({"grace_seconds": -1}, {"grace_seconds": 31 * 86400}, {"grace": 5}, {"grace_seconds": "soon"}):
        r = await api.client.post("/v1/tenant/keys/rotate", headers=bearer(key), json=bad)
        assert r.status_code == 422, bad
        assert "error" in r.json()
    assert (await api.client.post("/v1/tenant/keys/rotate", json={})).status_code == 401
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key))).status_code == 200  # nothing rotated


async def test_suspend_refuses_every_key_until_resumed(api):
    tenant_id, key = await api.tenant()
    r = await api.client.post(f"/admin/v1/tenants/{tenant_id}/suspend", headers=admin_headers())
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key))).status_code == 401
    listed = (await api.client.get("/admin/v1/tenants", headers=admin_headers())).json()["tenants"]
    assert {t["tenant_id"]: t["status"] for t in listed}[tenant_id] == "suspended"
    rotate = await api.client.post(f"/admin/v1/tenants/{tenant_id}/keys/rotate", headers=admin_headers())
    assert rotate.status_code == 409
    r = await api.client.post(f"/admin/v1/tenants/{tenant_id}/resume", headers=admin_headers())
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key))).status_code == 200


async def test_a_revoked_tenant_cannot_be_resumed(api):
    tenant_id, key = await api.tenant()
    assert (await api.client.post(f"/admin/v1/tenants/{tenant_id}/revoke", headers=admin_headers())).status_code == 200
    for action in ("resume", "suspend"):
        r = await api.client.post(f"/admin/v1/tenants/{tenant_id}/{action}", headers=admin_headers())
        assert r.status_code == 409 and r.json()["error"]["code"] == "tenant_revoked"
    assert (await api.client.get("/v1/tenant/config", headers=bearer(key))).status_code == 401
    missing = await api.client.post(f"/admin/v1/tenants/{uuid.uuid4()}/suspend", headers=admin_headers())
    assert missing.status_code == 404
    assert (await api.client.post(f"/admin/v1/tenants/{tenant_id}/suspend")).status_code == 401


async def test_monitoring_links_follow_grafana_url(api, backend):
    r = await api.client.get("/admin/v1/links", headers=admin_headers())
    assert r.status_code == 200 and r.json() == {"grafana_url": None, "dashboards": []}
    app, lifespan, client = await start_api(settings_for(backend, grafana_url="http://grafana.example:3000/"))
    try:
        body = (await client.get("/admin/v1/links", headers=admin_headers())).json()
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    assert body["grafana_url"] == "http://grafana.example:3000"
    assert body["dashboards"] == [{"title": "Capacity", "url": "http://grafana.example:3000/d/tts-gateway-capacity"}]
