"""Cartesia's HTTP forms spoken by a plain HTTP client: POST /tts/bytes in every encoding and container,
POST /tts/sse with word timestamps, the voice map for Cartesia voice ids, and refusals in Cartesia's shape."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from compat_helpers import SPOKEN_TEXT, assert_render_length, decode_audio, pcm16, reference_seconds

from control_plane.services import audio as A

TEXT = "Cartesia's clients speak through the gateway."
STOCK_VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"  # LiveKit's default Cartesia voice id


def _client(compat, **headers: str) -> httpx.AsyncClient:
    base = {"X-API-Key": compat.api_key, "Cartesia-Version": "2025-04-16"}
    return httpx.AsyncClient(base_url=compat.base_url, headers={**base, **headers}, timeout=120)


def _body(voice: str = "en-US-generic", transcript: str = TEXT, **output_format) -> dict:
    return {"model_id": "sonic-3", "transcript": transcript, "voice": {"mode": "id", "id": voice}, "language": "en",
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000, **output_format}}


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100])
async def test_bytes_raw_s16le_at_the_asked_rate(compat, rate):
    async with _client(compat) as c:
        r = await c.post("/tts/bytes", json=_body(transcript=SPOKEN_TEXT, sample_rate=rate))
    assert r.status_code == 200, r.text
    assert r.headers["x-sample-rate"] == str(rate)
    assert_render_length(pcm16(r.content).size / rate, await reference_seconds(compat))


async def test_bytes_raw_encodings_are_the_same_audio(compat):
    text = SPOKEN_TEXT
    async with _client(compat) as c:
        s16 = pcm16((await c.post("/tts/bytes", json=_body(transcript=text, sample_rate=16000))).content)
        f32 = await c.post("/tts/bytes", json=_body(transcript=text, encoding="pcm_f32le", sample_rate=16000))
        mulaw = await c.post("/tts/bytes", json=_body(transcript=text, encoding="pcm_mulaw", sample_rate=16000))
        alaw = await c.post("/tts/bytes", json=_body(transcript=text, encoding="pcm_alaw", sample_rate=8000))
    assert f32.status_code == mulaw.status_code == alaw.status_code == 200
    floats = np.frombuffer(f32.content, dtype="<f4")
    assert floats.size == s16.size and np.allclose(floats, s16 / 32768.0, atol=1e-6)
    # G.711 at the asked rate (16 kHz here, not telephony's fixed 8 kHz): one byte per sample
    assert len(mulaw.content) == s16.size
    decoded = A.mulaw_decode(mulaw.content).astype(np.float64)
    assert np.corrcoef(decoded, s16)[0, 1] > 0.99
    # the same seconds at 8 kHz (a new rendering: each is held against the reference renders)
    expected = await reference_seconds(compat)
    assert_render_length(s16.size / 16000, expected)
    assert_render_length(len(alaw.content) / 8000, expected)


@pytest.mark.parametrize("encoding", ["pcm_s16le", "pcm_f32le", "pcm_mulaw"])
async def test_bytes_wav_is_a_whole_file(compat, encoding):
    async with _client(compat) as c:
        r = await c.post("/tts/bytes", json=_body(transcript=SPOKEN_TEXT, container="wav", encoding=encoding,
                                                  sample_rate=22050))
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    x, rate = decode_audio(r.content)
    assert rate == 22050
    assert_render_length(x.size / rate, await reference_seconds(compat))


async def test_bytes_mp3(compat):
    body = _body()
    body["output_format"] = {"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}
    async with _client(compat) as c:
        r = await c.post("/tts/bytes", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    x, rate = decode_audio(r.content)
    assert rate == 44100 and x.size / rate > 1.0


def _events(text: str) -> list[dict]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            payload = json.loads(lines["data"])
            assert lines["event"] == payload["type"]
            out.append(payload)
    return out


async def test_sse_streams_chunks_word_timestamps_and_done(compat):
    body = _body(sample_rate=16000) | {"add_timestamps": True, "context_id": "ctx-1"}
    async with _client(compat) as c, c.stream("POST", "/tts/sse", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _events((await r.aread()).decode())
    assert events[-1] == {"type": "done", "done": True, "status_code": 200, "context_id": "ctx-1"}
    audio = b"".join(base64.b64decode(e["data"]) for e in events if e["type"] == "chunk")
    seconds = pcm16(audio).size / 16000
    words = [w for e in events if e["type"] == "timestamps" for w in zip(e["word_timestamps"]["words"],
                                                                      e["word_timestamps"]["start"],
                                                                      e["word_timestamps"]["end"], strict=True)]
    assert [w for w, _, _ in words] == TEXT.split()
    starts = [s for _, s, _ in words]
    assert starts == sorted(starts) and all(s < e <= seconds + 0.01 for _, s, e in words)
    assert all(e["context_id"] == "ctx-1" for e in events)


async def test_key_in_a_bearer_header_and_the_version_in_the_query(compat):
    async with httpx.AsyncClient(base_url=compat.base_url, timeout=120,
                                 headers={"Authorization": f"Bearer {compat.api_key}"}) as c:
        r = await c.post("/tts/bytes", params={"cartesia_version": "2026-03-01"},
                         json=_body() | {"voice": "en-US-generic"})
    assert r.status_code == 200 and pcm16(r.content).size > 24000


async def test_a_stock_cartesia_voice_speaks_the_default_voice_until_the_tenant_maps_it(compat):
    async with _client(compat) as c:
        stock = await c.post("/tts/bytes", json=_body(STOCK_VOICE))
        assert stock.status_code == 200 and stock.headers["x-engine"] == "piper"
        cloned = await c.post("/tts/bytes", json=_body(compat.cloned_voice))
        assert cloned.headers["x-engine"] == "xtts"
        async with compat.gateway.client(compat.api_key) as ours:
            mapping = {f"cartesia:{STOCK_VOICE}": compat.cloned_voice}
            r = await ours.put("/v1/tenant/config", json={"voice_map": mapping})
            assert r.status_code == 200, r.text
            assert r.json()["voice_map"] == {f"cartesia:{STOCK_VOICE}": compat.cloned_voice}
            bad = await ours.put("/v1/tenant/config", json={"voice_map": {"cartesia:": compat.cloned_voice}})
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_voice_map"
        try:
            mapped = await c.post("/tts/bytes", json=_body(STOCK_VOICE.upper()))
            assert mapped.status_code == 200 and mapped.headers["x-engine"] == "xtts"
        finally:
            async with compat.gateway.client(compat.api_key) as ours:
                assert (await ours.put("/v1/tenant/config", json={"voice_map": {}})).status_code == 200


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 12345}}, 400,
     "unsupported_sample_rate"),
    ({"output_format": {"container": "raw", "encoding": "pcm_s24le", "sample_rate": 16000}}, 400, "invalid_request"),
    ({"voice": {"mode": "embedding", "embedding": [0.1, 0.2]}}, 400, "unsupported_voice"),
    ({"transcript": ""}, 400, "empty_text"),
    ({"language": "tlh"}, 400, "unsupported_language"),
    ({"speed": "ludicrous"}, 400, "invalid_speed"),
])
async def test_refusals_in_cartesia_shape(compat, change, status, code):
    async with _client(compat) as c:
        r = await c.post("/tts/bytes", json=_body() | change)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["error_code"] == error["code"] == code and error["status_code"] == status
    assert error["title"] and error["message"] and error["request_id"] == r.headers["x-request-id"]


async def test_refused_keys_and_versions(compat):
    async with httpx.AsyncClient(base_url=compat.base_url, timeout=60) as c:
        missing = await c.post("/tts/bytes", json=_body())
        wrong = await c.post("/tts/bytes", json=_body(), headers={"X-API-Key": "not-a-key"})
        version = await c.post("/tts/bytes", json=_body(), headers={"X-API-Key": compat.api_key,
                                                                    "Cartesia-Version": "yesterday"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["error_code"] == "unauthorized"
    assert version.status_code == 400 and version.json()["error"]["error_code"] == "invalid_version"


async def test_options_cartesia_accepts_are_accepted(compat):
    """Emotion, pronunciation dictionaries, inline control tags: accepted; speed and volume applied."""
    body = _body() | {"generation_config": {"emotion": "excited", "speed": 1.5, "volume": 0.5},
                      "pronunciation_dict_id": "dict-1", "save": False, "normalization": "auto",
                      "transcript": f'<emotion value="excited"/>{TEXT}'}
    async with _client(compat) as c:
        plain = pcm16((await c.post("/tts/bytes", json=_body())).content)
        r = await c.post("/tts/bytes", json=body)
    assert r.status_code == 200, r.text
    fast = pcm16(r.content)
    assert fast.size < plain.size * 0.8  # 1.5x speed
    assert np.abs(fast).max() < np.abs(plain).max() * 0.7  # half the volume
