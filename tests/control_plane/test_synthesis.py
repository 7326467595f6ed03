"""POST /v1/synthesize through a real gateway and Triton: formats, headers, cache, SSML, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gateway_helpers import backend_overrides, decode, run_gateway

from control_plane.services.audio import alaw_decode, mulaw_decode


@pytest.fixture(scope="module")
def gateway(triton_piper, backend):
    """Every test here runs on the embedded store and on real Postgres + Redis (cache included)."""
    with run_gateway(backend["tts_data_dir"], triton_piper, **backend_overrides(backend)) as gw:
        yield gw


@pytest.fixture(scope="module")
async def tenant_key(gateway):
    return (await gateway.tenant())[1]


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate"),
    [("wav", "audio/wav", 22050), ("mp3", "audio/mpeg", 22050), ("opus", "audio/ogg", 24000),
     ("flac", "audio/flac", 22050), ("vorbis", "audio/ogg", 22050)],
)
async def test_piper_formats_decode_with_matching_headers(gateway, tenant_key, fmt, content_type, rate):
    async with gateway.client(tenant_key) as c:
        r = await c.post("/v1/synthesize", json={"text": "Hello there. This is a short test.", "format": fmt})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(content_type)
    assert r.headers["x-cache"] == "MISS" and r.headers["x-request-id"]
    x, got_rate = decode(r.content)
    assert got_rate == rate == int(r.headers["x-sample-rate"])
    duration = float(r.headers["x-audio-duration"])
    assert 1.0 < duration < 6.0
    assert abs(x.size / rate - duration) < 0.1  # lossy codecs pad a little
    assert float(np.abs(x).max()) > 0.05


@pytest.mark.parametrize(("fmt", "decoder"), [("mulaw", mulaw_decode), ("alaw", alaw_decode)])
async def test_telephony_formats_are_raw_8k(gateway, tenant_key, fmt, decoder):
    async with gateway.client(tenant_key) as c:
        r = await c.post("/v1/synthesize", json={"text": "Your code is four two seven.", "format": fmt,
                                                  "sample_rate": 16000})
    assert r.status_code == 200 and r.headers["x-sample-rate"] == "8000"
    pcm = decoder(r.content)
    assert pcm.size == len(r.content)
    assert pcm.size / 8000 == pytest.approx(float(r.headers["x-audio-duration"]), abs=0.01)


async def test_pcm_at_a_requested_rate(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        r = await c.post("/v1/synthesize", json={"text": "Sixteen kilohertz.", "format": "pcm", "sample_rate": 16000})
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/L16")
    samples = len(r.content) // 2
    assert samples / 16000 == pytest.approx(float(r.headers["x-audio-duration"]), abs=0.01)


def _cache_counts(metrics_text: str) -> tuple[float, float]:
    """tts_cache_hits_total and tts_cache_misses_total summed over engines."""
    totals = {"tts_cache_hits_total": 0.0, "tts_cache_misses_total": 0.0}
    for line in metrics_text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["tts_cache_hits_total"], totals["tts_cache_misses_total"]


async def test_second_identical_request_is_a_cache_hit(gateway, tenant_key):
    body = {"text": "Cache me if you can.", "format": "wav"}
    async with gateway.client(tenant_key) as c:
        hits0, misses0 = _cache_counts((await c.get("/metrics")).text)
        first = await c.post("/v1/synthesize", json=body)
        second = await c.post("/v1/synthesize", json=body)
        other = await c.post("/v1/synthesize", json={**body, "format": "flac"})
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    assert other.headers["x-cache"] == "MISS"
    async with gateway.client(tenant_key) as c:  # each lookup is counted once
        hits, misses = _cache_counts((await c.get("/metrics")).text)
    assert (hits - hits0, misses - misses0) == (1, 2)
    _, other_key = await gateway.tenant()
    async with gateway.client(other_key) as c:  # the cache is per tenant
        assert (await c.post("/v1/synthesize", json=body)).headers["x-cache"] == "MISS"


async def test_ssml_breaks_are_exact_and_marks_are_timed(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        silent = await c.post("/v1/synthesize", json={"ssml": '<speak><break time="1250ms"/></speak>',
                                                       "format": "wav", "sample_rate": 16000})
        assert silent.status_code == 200, silent.text
        x, rate = decode(silent.content)
        assert rate == 16000 and x.size == 20000 and not x.any()
        r = await c.post("/v1/synthesize", json={
            "ssml": '<speak>Hello.<break time="500ms"/><mark name="after"/>World.</speak>', "format": "wav"})
    assert r.status_code == 200
    marks = dict(tuple(m) for m in __import__("json").loads(r.headers["x-marks"]))
    x, rate = decode(r.content)
    after = round(marks["after"] * rate)
    # The mark sits right after the planned half second of silence, which is exactly zero. Marks
    # are reported to 0.1 ms (2.2 samples at 22.05 kHz): stay 3 samples inside the silence.
    margin = 3
    assert not x[after - int(0.5 * rate) + margin : after - margin].any()
    assert x[after:].any()


async def test_bad_input_is_a_json_4xx_naming_the_field(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        cases = [
            ({"text": "x", "speed": 3.0}, 422, "speed"),
            ({"text": "x", "format": "aiff"}, 422, "format"),
            ({"format": "wav"}, 422, None),
            ({"ssml": "<speak><audio/></speak>"}, 422, "audio"),
            ({"ssml": '<!DOCTYPE x [<!ENTITY a "b">]><speak>&a;</speak>'}, 400, None),
            ({"text": "Bonjour", "language": "fr"}, 422, None),  # the Piper voice speaks English only
            ({"text": "x", "voice_id": "no-such-voice"}, 404, None),
        ]
        for body, status, field in cases:
            r = await c.post("/v1/synthesize", json=body)
            assert r.status_code == status, (body, r.text)
            err = r.json()["error"]
            assert err["code"] and err["message"]
            if field:
                assert field in r.text
        assert (await c.post("/v1/synthesize", content=b"{not json", headers={"content-type": "application/json"})
                ).status_code == 422
    async with gateway.client("tts_wrong") as c:
        assert (await c.post("/v1/synthesize", json={"text": "x"})).status_code == 401


async def test_ssml_validate_endpoint(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        ok = await c.post("/v1/ssml/validate", json={"ssml": '<speak>Hi <break time="2s"/> there.</speak>'})
        bad = await c.post("/v1/ssml/validate", json={"ssml": "<speak>\n <foo/> <voice name='v-x'>a</voice></speak>"})
        evil = await c.post("/v1/ssml/validate", json={"ssml": '<!DOCTYPE s SYSTEM "http://x/y.dtd"><speak/>'})
    body = ok.json()
    assert ok.status_code == 200 and body["valid"] and len(body["segments"]) == 2
    assert body["billed_characters"] == len("Hi") + len("there.")
    assert body["estimated_duration_s"] > 2.0
    errors = bad.json()["errors"]
    assert not bad.json()["valid"]
    assert {"line": 2, "column": 2, "message": "unsupported element <foo>"} in errors
    assert any("voice 'v-x' not found" in e["message"] for e in errors)
    assert evil.status_code == 400 and evil.json()["error"]["code"] == "ssml_forbidden"


async def test_engines_report_readiness_and_versions(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        r = await c.get("/v1/engines")
    engines = {e["name"]: e for e in r.json()["engines"]}
    assert engines["piper"]["ready"] and engines["piper"]["test_weights"] is False
    assert engines["piper"]["model_version"]
    assert "en" in engines["xtts"]["languages"] and len(engines["xtts"]["languages"]) == 17


async def test_openapi_documents_the_endpoints_with_examples(gateway):
    async with gateway.client() as c:
        spec = (await c.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/v1/synthesize", "/v1/synthesize/stream", "/v1/audio/speech", "/v1/voices/upload",
                 "/v1/ssml/validate", "/v1/engines", "/v1/voices/{voice_id}"):
        assert path in paths, path
    examples = paths["/v1/synthesize"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert "ssml" in examples
    assert "multipart/form-data" in paths["/v1/voices/upload"]["post"]["requestBody"]["content"]


