"""The app shell: request ids, the one error shape, JSON log lines without bodies."""

from __future__ import annotations

import json
import logging

from control_plane.logging import JsonFormatter
from tests.control_plane.conftest import bearer


async def test_request_id_is_echoed_or_generated(api):
    r = await api.client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = await api.client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces" and len(generated.headers["x-request-id"]) == 32


async def test_errors_share_one_json_shape(api):
    r = await api.client.get("/no/such/route", headers={"X-Request-ID": "rid-1"})
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "Not Found", "request_id": "rid-1"}}
    _, key = await api.tenant()
    bad = await api.client.post("/v1/synthesize", headers=bearer(key), json={"text": "hi", "speed": 9})
    assert bad.status_code == 422
    err = bad.json()["error"]
    assert err["code"] == "validation_error" and err["message"].startswith("speed")
    assert err["details"][0]["field"] == "speed"
    wrong_method = await api.client.delete("/v1/tenant/config", headers=bearer(key))
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


async def test_request_log_lines_are_json_without_bodies(api):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("tts_gateway.http")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        _, key = await api.tenant()
        await api.client.post("/v1/ssml/validate", headers={**bearer(key), "X-Request-ID": "log-1"},
                              json={"ssml": "<speak>a very secret sentence</speak>"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    lines = [JsonFormatter().format(r) for r in records]
    mine = [json.loads(line) for line in lines if '"log-1"' in line]
    assert mine and mine[0]["path"] == "/v1/ssml/validate" and mine[0]["status"] == 200
    assert {"method", "route", "latency_ms", "request_id"} <= set(mine[0])
    assert all("secret sentence" not in line for line in lines)


async def test_only_the_serving_processs_app_freezes_what_startup_made(tmp_path) -> None:
    """`tts-gateway serve`'s app moves what startup made out of the collector's sight (a full collection would
    walk it with the event loop stopped); an app made among others (tests, benchmarks) leaves the collector
    alone."""
    import gc

    from control_plane.app import create_app
    from control_plane.settings import Settings

    settings = Settings(tts_data_dir=str(tmp_path), database_url="", redis_url="", tts_admin_token="t",
                        triton_grpc_url="127.0.0.1:9", triton_http_url="http://127.0.0.1:9")
    gc.unfreeze()
    try:
        for freeze, frozen in ((False, False), (True, True)):
            app = create_app(settings, freeze_after_startup=freeze)
            async with app.router.lifespan_context(app):
                assert (gc.get_freeze_count() > 0) is frozen
    finally:
        gc.unfreeze()
