"""WS /v1/synthesize/ws for voice agents: barge-in (`clear`), contexts, flush acks, keepalive, limits.

Real gateway, real Triton (the bundled Piper voice; a cloned XTTS voice for the two-voice test).
Assertions are about order and content, never wall-clock time: latency is measured in bench/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random

import numpy as np
import pytest
import websockets
from gateway_helpers import encode_reference, piper_speech, run_gateway, settled_triton_counter

LONG = " ".join(f"This is sentence number {i} of a long answer that the caller is about to interrupt."
                for i in range(12))


@pytest.fixture(scope="module")
def gateway(triton_server, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-rt"), triton_server, ws_inactivity_timeout_s=3,
                     ws_max_contexts=3) as gw:
        yield gw


@pytest.fixture(scope="module")
async def tenant_key(gateway):
    return (await gateway.tenant())[1]


def _connect(gateway, key):
    return websockets.connect(gateway.url.replace("http://", "ws://") + "/v1/synthesize/ws",
                              additional_headers={"Authorization": f"Bearer {key}"}, max_size=None)


async def _next_event(ws, kind: str, log: list) -> dict:
    while True:
        msg = await asyncio.wait_for(ws.recv(), 120)
        log.append(msg)
        if isinstance(msg, str) and json.loads(msg)["type"] == kind:
            return json.loads(msg)


def _audio_of(log: list, context_id: str | None) -> bytes:
    out = b""
    for msg in log:
        if isinstance(msg, bytes) and context_id is None:
            out += msg
        elif isinstance(msg, str):
            event = json.loads(msg)
            if event["type"] == "audio" and event.get("context_id") == context_id:
                out += base64.b64decode(event["audio"])
    return out


async def test_clear_stops_the_context_at_once_and_the_socket_speaks_on(gateway, tenant_key):
    metrics = gateway_metrics(gateway)
    before = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    log: list = []
    async with _connect(gateway, tenant_key) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm", "context_id": "turn-1"}))
        await ws.send(json.dumps({"type": "text", "text": LONG, "context_id": "turn-1"}))
        await ws.send(json.dumps({"type": "flush", "context_id": "turn-1"}))
        first = await _next_event(ws, "audio", log)
        assert first["context_id"] == "turn-1"
        await ws.send(json.dumps({"type": "clear", "context_id": "turn-1"}))
        await _next_event(ws, "cleared", log)
        after_clear: list = []
        # The same socket, a new context: it is spoken in full, and nothing of turn-1 comes any more.
        await ws.send(json.dumps({"type": "start", "format": "pcm", "context_id": "turn-2"}))
        await ws.send(json.dumps({"type": "text", "text": "Sure, let me check that for you.", "context_id": "turn-2"}))
        await ws.send(json.dumps({"type": "end", "context_id": "turn-2"}))
        done = await _next_event(ws, "done", after_clear)
    assert done["context_id"] == "turn-2" and done["audio_seconds"] > 1.0
    stale = [m for m in after_clear if isinstance(m, str) and json.loads(m).get("context_id") == "turn-1"]
    assert stale == [], "turn-1 sent something after `cleared`"
    spoken = len(_audio_of(log, "turn-1")) / 2 / 22050
    assert 0 < spoken < 20, "turn-1 was cut short, not played to its end (about 60 s of text)"
    assert len(_audio_of(after_clear, "turn-2")) / 2 / 22050 == pytest.approx(done["audio_seconds"], abs=0.01)
    # Triton's work stopped with the clear: the 12 sentences of turn-1 are one request each, and only
    # those begun before the clear (plus turn-2's one, and cancel requests) reached Triton; none is left.
    after = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    assert after - before < 12, f"{after - before} piper requests for a cleared answer and one sentence"
    assert await settled_triton_counter(metrics, "tts_model_active_requests", model="piper") == 0


def gateway_metrics(gateway) -> str:
    return gateway.app.state.services.settings.triton_metrics_url


async def test_two_contexts_interleaved_with_their_own_voice_and_format(gateway, tenant_key):
    from gateway_helpers import decode

    x, rate = piper_speech(6.0)
    async with gateway.client(tenant_key) as c:
        r = await c.post("/v1/voices/upload", data={"name": "agent", "language": "en"},
                         files={"audio": ("ref.wav", encode_reference(x, rate, "wav"), "audio/wav")})
        assert r.status_code == 201, r.text
        cloned = r.json()["voice_id"]
    log: list = []
    async with _connect(gateway, tenant_key) as ws:
        await ws.send(json.dumps({"type": "start", "context_id": "a", "format": "pcm", "sample_rate": 16000}))
        await ws.send(json.dumps({"type": "start", "context_id": "b", "voice_id": cloned, "format": "wav"}))
        for part in ("Good morning, ", "thanks for calling. ", "How can I ", "help you today?"):
            await ws.send(json.dumps({"type": "text", "text": part, "context_id": "a"}))
            await ws.send(json.dumps({"type": "text", "text": part, "context_id": "b"}))
        await ws.send(json.dumps({"type": "end", "context_id": "a"}))
        await ws.send(json.dumps({"type": "end", "context_id": "b"}))
        done = {}
        while len(done) < 2:
            event = await _next_event(ws, "done", log)
            done[event["context_id"]] = event
    started = {json.loads(m)["context_id"]: json.loads(m) for m in log
               if isinstance(m, str) and json.loads(m)["type"] == "started"}
    assert started["a"]["sample_rate"] == 16000 and started["a"]["format"] == "pcm"
    assert started["b"]["sample_rate"] == 24000 and started["b"]["format"] == "wav"
    pcm = _audio_of(log, "a")
    assert len(pcm) / 2 / 16000 == pytest.approx(done["a"]["audio_seconds"], abs=0.01)
    wav, wav_rate = decode(_fix_wav_sizes(_audio_of(log, "b")))
    assert wav_rate == 24000 and wav.size / 24000 == pytest.approx(done["b"]["audio_seconds"], abs=0.01)
    text = "Good morning, thanks for calling. How can I help you today?"
    assert done["a"]["characters"] == done["b"]["characters"] == len(text) - 1  # spaces between pieces


def _fix_wav_sizes(data: bytes) -> bytes:
    """A streamed WAV leaves its sizes open; soundfile wants them."""
    import struct

    body = len(data) - 44
    return data[:4] + struct.pack("<I", 36 + body) + data[8:40] + struct.pack("<I", body) + data[44:]


async def test_flush_is_acknowledged_after_its_audio(gateway, tenant_key):
    log: list = []
    async with _connect(gateway, tenant_key) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm"}))
        await ws.send(json.dumps({"type": "text", "text": "No sentence end here"}))
        await ws.send(json.dumps({"type": "flush"}))
        await _next_event(ws, "flushed", log)
        heard = len(_audio_of(log, None))
        await ws.send(json.dumps({"type": "end"}))
        done = await _next_event(ws, "done", log)
    assert heard > 0 and abs(heard / 2 - done["audio_seconds"] * 22050) <= 2  # all of it, before `flushed`


async def test_llm_like_feed_plays_without_gaps(gateway, tenant_key):
    """Text a few characters at a time, 20-60 ms apart: the audio keeps ahead of real-time playback
    (a player that starts half a second after the first audio, as agents' jitter buffers do, never
    runs dry) and has no silence between sentences beyond a pause."""
    rng = random.Random(7)
    answer = ("Thanks for waiting. I found your order, and it shipped yesterday. It should arrive on Friday. "
              "Is there anything else I can help you with?")
    arrivals: list[tuple[float, int]] = []
    loop = asyncio.get_running_loop()
    async with _connect(gateway, tenant_key) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm"}))

        async def feed() -> None:
            i = 0
            while i < len(answer):
                n = rng.randint(2, 6)
                await ws.send(json.dumps({"type": "text", "text": answer[i:i + n]}))
                i += n
                await asyncio.sleep(rng.uniform(0.02, 0.06))
            await ws.send(json.dumps({"type": "end"}))

        feeder = asyncio.create_task(feed())
        audio = bytearray()
        async for msg in ws:
            if isinstance(msg, bytes):
                arrivals.append((loop.time(), len(msg) // 2))
                audio.extend(msg)
        await feeder
    t0 = arrivals[0][0] + 0.5  # playback starts after a 500 ms jitter buffer
    have = 0
    for at, samples in arrivals:
        assert at <= t0 + have / 22050, f"playback ran dry {at - t0 - have / 22050:.3f} s before a chunk"
        have += samples
    x = np.frombuffer(bytes(audio), dtype="<i2").astype(np.float32) / 32768
    frames = np.abs(x[: x.size // 441 * 441]).reshape(-1, 441).max(axis=1)  # 20 ms frames
    longest = max((len(run) for run in "".join("s" if f < 0.01 else "v" for f in frames).split("v")), default=0)
    assert longest * 0.02 < 0.8, f"a {longest * 0.02:.2f} s silence inside the answer"


async def test_limits_and_errors_name_what_is_wrong(gateway, tenant_key):
    async with _connect(gateway, tenant_key) as ws:
        await ws.send(json.dumps({"type": "start", "context_id": "a"}))
        for cid in ("b", "c", "d"):
            await ws.send(json.dumps({"type": "start", "context_id": cid}))
        log: list = []
        error = await _next_event(ws, "error", log)
        assert error["code"] == "too_many_contexts" and error["context_id"] == "d"
        await ws.send(json.dumps({"type": "text", "text": "Hi.", "context_id": "zzz"}))
        error = await _next_event(ws, "error", log)
        assert error["code"] == "unknown_context"
        await ws.send(json.dumps({"type": "text", "text": "x" * 6000, "context_id": "a"}))
        error = await _next_event(ws, "error", log)
        assert error["code"] == "text_too_long" and error["context_id"] == "a"
        # The socket is still open for the other contexts; then idle past the inactivity timeout.
        await ws.send(json.dumps({"type": "text", "text": "Still here.", "context_id": "b"}))
        await ws.send(json.dumps({"type": "end", "context_id": "b"}))
        assert (await _next_event(ws, "done", log))["context_id"] == "b"
        error = await _next_event(ws, "error", log)
        assert error["code"] == "inactivity_timeout"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 30)
        assert ws.close_code == 1000
