"""The dev stack's one-time console sign-in link: POST /console/signin exchanges the code in the printed
link's fragment for the dev tenant's key, once, within ten minutes, and only where the dev stack
enabled it (CONSOLE_SIGNIN_CODE_FILE)."""

from __future__ import annotations

import json
import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.adapters.limits import AUTH_FAILURES
from control_plane.services.console_signin import issue_code, redeem
from tests.control_plane.conftest import admin_headers, bearer, settings_for, start_api


async def _start(tmp_path: Path, **overrides: Any) -> tuple[Any, Any, Any]:
    backend = {"tts_data_dir": tmp_path, "database_url": "", "redis_url": ""}
    return await start_api(settings_for(backend, **overrides))


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[tuple[Any, Path]]:
    code_file = tmp_path / "console-signin.json"
    _, lifespan, client = await _start(tmp_path, console_signin_code_file=str(code_file))
    try:
        yield client, code_file
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def _dev_key(client: Any) -> str:
    r = await client.post("/admin/v1/tenants", headers=admin_headers(), json={"name": f"dev-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    return str(r.json()["api_key"])


async def test_disabled_unless_the_dev_stack_enables_it(tmp_path):
    _, lifespan, client = await _start(tmp_path)
    try:
        r = await client.post("/console/signin", json={"code": "anything"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_a_good_code_gives_the_key_once(gw):
    client, code_file = gw
    key = await _dev_key(client)
    code = issue_code(code_file, key)
    assert key not in code and len(code) >= 43  # 256 random bits, URL-safe; not the key
    saved = code_file.read_text()
    assert code not in saved and stat.S_IMODE(code_file.stat().st_mode) == 0o600  # stored hashed, owner-only

    r = await client.post("/console/signin", json={"code": code})
    assert r.status_code == 200, r.text
    assert r.json()["api_key"] == key and r.json()["name"].startswith("dev-")
    assert r.headers["cache-control"] == "no-store"
    assert (await client.get("/v1/tenant/config", headers=bearer(r.json()["api_key"]))).status_code == 200
    assert not code_file.exists()

    again = await client.post("/console/signin", json={"code": code})
    assert again.status_code == 401 and again.json()["error"]["code"] == "unauthorized"


async def test_a_wrong_or_expired_code_is_refused(gw):
    client, code_file = gw
    key = await _dev_key(client)
    code = issue_code(code_file, key)
    wrong = await client.post("/console/signin", json={"code": code[:-2] + ("AA" if code[-2:] != "AA" else "BB")})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert code_file.exists()  # a wrong guess does not spend the real code

    expired = issue_code(code_file, key, ttl_s=-1)
    r = await client.post("/console/signin", json={"code": expired})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert "api_key" not in r.text


async def test_bad_bodies_get_4xx_json(gw):
    client, _ = gw
    for body in ({}, {"code": ""}, {"code": "x" * 201}, {"code": 5, "extra": 1}):
        r = await client.post("/console/signin", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", body


async def test_guessing_is_throttled_like_other_auth_failures(gw):
    client, code_file = gw
    code = issue_code(code_file, await _dev_key(client))
    for _ in range(AUTH_FAILURES.amount):
        assert (await client.post("/console/signin", json={"code": "guess"})).status_code == 401
    blocked = await client.post("/console/signin", json={"code": code})
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_auth_failures"
    assert code_file.exists()


def test_redeem_checks_expiry_and_the_file(tmp_path):
    path = tmp_path / "code.json"
    code = issue_code(path, "tts_key", ttl_s=600)
    expires_at = json.loads(path.read_text())["expires_at"]
    assert redeem(path, code, now=expires_at + 1) is None and not path.exists()
    code = issue_code(path, "tts_key", ttl_s=600)
    assert redeem(path, "not-it", now=time.time()) is None
    redeemed = redeem(path, code)
    assert redeemed is not None and redeemed.api_key == "tts_key"
    assert redeem(path, code) is None
    path.write_text("not json")
    assert redeem(path, code) is None
    path.write_text(json.dumps({"code_sha256": 1}))
    assert redeem(path, code) is None
