"""/health, /ready and /metrics: with Triton down (degraded, not ready, reasons given) and with a real
Triton serving piper; draining refuses new streams."""

from __future__ import annotations

import pytest

from control_plane.errors import Unavailable
from tests.control_plane.conftest import bearer, settings_for, start_api


async def test_health_is_200_and_degraded_when_triton_is_down(api, backend):
    r = await api.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded"
    assert set(body["engines"]) == {"piper", "xtts", "xtts_condition"}
    assert not any(e["ready"] for e in body["engines"].values())
    assert body["store"] == {"backend": "sqlite" if backend["name"] == "embedded" else "postgres", "ok": True}
    assert body["redis"] == (None if backend["name"] == "embedded" else {"ok": True})
    assert body["memory"]["rss_mb"] > 10 and body["uptime_s"] >= 0 and body["version"]
    assert body["active_streams"] == 0


async def test_ready_is_503_with_reasons_when_triton_is_down(api):
    r = await api.client.get("/ready")
    assert r.status_code == 503 and r.json()["ready"] is False
    assert any("triton" in reason for reason in r.json()["reasons"])


async def test_metrics_exposition(api):
    _, key = await api.tenant()
    await api.client.get("/v1/tenant/config", headers=bearer(key))
    await api.client.get("/v1/tenant/config")
    r = await api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'tts_http_requests_total{method="GET",route="/v1/tenant/config",status="200"} 1.0' in text
    assert 'tts_errors_total{code="unauthorized"} 1.0' in text
    for name in ("tts_time_to_first_audio_seconds", "tts_active_streams", "tts_audio_seconds_total",
                 "tts_cache_hits_total", "tts_cache_misses_total", "tts_rate_limited_total", "tts_cache_hit_ratio",
                 "tts_http_request_duration_seconds"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


async def test_an_error_while_opening_a_request_is_counted_once(api):
    # The flow counts an error where it surfaces and the handler that renders it must not count it again.
    _, key = await api.tenant()
    for path in ("/v1/synthesize", "/v1/synthesize/stream"):
        r = await api.client.post(path, headers=bearer(key),
                                  json={"ssml": "<speak>Hello <prosody rate='fast'>there</speak>"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_ssml", r.text
    text = (await api.client.get("/metrics")).text
    assert 'tts_errors_total{code="invalid_ssml"} 2.0' in text


async def test_draining_refuses_new_streams_and_readiness(api):
    tracker = api.services.streams
    async with tracker.track():
        assert tracker.active == 1
        assert "tts_active_streams 1.0" in (await api.client.get("/metrics")).text
        tracker.draining = True
        with pytest.raises(Unavailable) as info:
            async with tracker.track():
                pass
        assert info.value.status_code == 503 and info.value.headers["Retry-After"]
    assert await tracker.drain(timeout=1) is True
    r = await api.client.get("/ready")
    assert r.status_code == 503 and any("draining" in x for x in r.json()["reasons"])
    assert (await api.client.get("/health")).json()["status"] == "draining"


async def test_health_and_ready_with_a_real_triton(triton_piper, tmp_path):
    settings = settings_for({"tts_data_dir": tmp_path, "database_url": "", "redis_url": ""},
                            triton_grpc_url=triton_piper.grpc_url, triton_http_url=triton_piper.http_url,
                            triton_metrics_url=triton_piper.metrics_url)
    app, lifespan, client = await start_api(settings)
    try:
        health = (await client.get("/health")).json()
        assert health["engines"]["piper"]["ready"] is True
        assert health["engines"]["piper"]["model_version"]
        assert (await client.get("/ready")).status_code == 200
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
