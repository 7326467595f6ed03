"""WS /v1/speak as Deepgram's clients use it: LiveKit's deepgram.TTS stream() (a Speak per word, Flush per
segment, waits for Flushed, one pooled socket), Pipecat's DeepgramTTSService in a real Pipeline (Speak per
sentence, Flush at the end of the turn, Clear on its interruption frame), and the protocol itself over a
plain WebSocket: Metadata, Flushed/Cleared sequence ids, barge-in, the `token` subprotocol, Warning and
Error messages, refused handshakes. Assertions are about order and content, never wall-clock time (the
Clear latency is measured in bench/)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import httpx
import pytest
import websockets
from compat_helpers import SPOKEN_TEXT, assert_render_length, livekit_stream_words, pcm16, reference_seconds
from livekit.plugins import deepgram as lk_deepgram
from pipecat.frames.frames import EndFrame, InterruptionFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.deepgram.tts import DeepgramTTSService
from pipecat_helpers import PATIENT, speak

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control_plane"))

from gateway_helpers import settled_triton_counter  # noqa: E402

LONG = " ".join(f"This is sentence number {i} of a long answer that the caller is about to interrupt."
                for i in range(12))


def _url(compat, **query) -> str:
    return compat.base_url.replace("http://", "ws://") + "/v1/speak?" + urlencode(query)


def _connect(compat, key: str | None = None, *, subprotocol: bool = False, **query):
    key = compat.api_key if key is None else key
    if subprotocol:
        return websockets.connect(_url(compat, **query), subprotocols=["token", key], max_size=None)
    return websockets.connect(_url(compat, **query), additional_headers={"Authorization": f"Token {key}"},
                              max_size=None)


async def _until(ws, log: list, done) -> object:
    while True:
        msg = await asyncio.wait_for(ws.recv(), 120)
        item = msg if isinstance(msg, bytes) else json.loads(msg)
        log.append(item)
        if done(item):
            return item


def _audio(log: list) -> bytes:
    return b"".join(m for m in log if isinstance(m, bytes))


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_livekit_deepgram_stream_word_by_word(compat, rate):
    async with aiohttp.ClientSession() as session:
        tts = lk_deepgram.TTS(api_key=compat.api_key, base_url=f"{compat.v1}/speak", sample_rate=rate,
                              http_session=session)
        frames = await livekit_stream_words(tts, SPOKEN_TEXT)
    assert frames and {f.sample_rate for f in frames} == {rate} and {f.num_channels for f in frames} == {1}
    assert_render_length(sum(f.samples_per_channel for f in frames) / rate, await reference_seconds(compat))


async def test_pipecat_deepgram_service_in_a_pipeline(compat):
    tts = DeepgramTTSService(api_key=compat.api_key, base_url=compat.base_url.replace("http", "ws", 1), **PATIENT)
    spoken = await speak(tts, [SPOKEN_TEXT], sample_rate=24000)
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {24000}
    assert_render_length(pcm16(spoken.audio).size / 24000, await reference_seconds(compat))
    assert len(spoken.frames) >= 3  # streamed: at least a message per sentence


class _FirstAudio(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.first = asyncio.Event()
        self.frames: list[tuple[float, TTSAudioRawFrame]] = []

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.frames.append((time.perf_counter(), frame))
            self.first.set()
        await self.push_frame(frame, direction)


async def _usage(compat, key: str, requests: int) -> dict:
    """The tenant's usage today once `requests` requests are recorded (they are written as sockets end)."""
    async with httpx.AsyncClient(base_url=compat.base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=60) as c:
        for _ in range(240):
            days = (await c.get("/v1/tenant/usage")).json()["days"]
            if days and sum(d["requests"] for d in days) >= requests:
                return {k: sum(d[k] for d in days) for k in ("requests", "audio_seconds", "characters")}
            await asyncio.sleep(0.25)
    raise AssertionError("usage was not recorded")


async def test_pipecat_interruption_stops_the_audio_at_the_gateway(compat):
    """Pipecat's own InterruptionFrame makes the service send Clear: the gateway stops that answer (its
    usage shows a fraction of it spoken, Triton stops), and the next turn on the same socket is spoken."""
    _, key = await compat.gateway.tenant()
    metrics = compat.gateway.app.state.services.settings.triton_metrics_url
    before = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    tts = DeepgramTTSService(api_key=key, base_url=compat.base_url.replace("http", "ws", 1), **PATIENT)
    watch = _FirstAudio()
    task = PipelineTask(Pipeline([tts, watch]), params=PipelineParams(audio_out_sample_rate=24000),
                        idle_timeout_secs=120)

    async def drive() -> float:
        await task.queue_frames([TTSSpeakFrame(LONG)])
        await asyncio.wait_for(watch.first.wait(), 120)
        interrupted = time.perf_counter()
        await task.queue_frames([InterruptionFrame()])
        await task.queue_frames([TTSSpeakFrame("After the interruption, a short answer."), EndFrame()])
        return interrupted

    driver = asyncio.create_task(drive())
    await PipelineRunner(handle_sigint=False).run(task)
    await driver
    usage = await _usage(compat, key, 2)
    assert usage["audio_seconds"] < 25, usage  # LONG alone is about 60 s of speech
    after = [f for t, f in watch.frames if t > driver.result()]
    assert pcm16(b"".join(f.audio for f in after)).size / 24000 > 1.0, "the next turn was not spoken"
    spent = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper") - before
    assert spent < 13, f"{spent} piper requests for an interrupted answer (12 sentences) and one sentence"
    assert await settled_triton_counter(metrics, "tts_model_active_requests", model="piper") == 0


async def test_protocol_metadata_flushed_clear_and_close(compat):
    log: list = []
    async with _connect(compat, model="aura-2-thalia-en", encoding="linear16", sample_rate=16000) as ws:
        assert ws.response.headers["dg-model-name"] == "aura-2-thalia-en" and ws.response.headers["dg-request-id"]
        meta = await _until(ws, log, lambda m: True)
        assert meta["type"] == "Metadata" and meta["model_name"] == "aura-2-thalia-en" and meta["request_id"]
        await ws.send(json.dumps({"type": "Speak", "text": "A first turn, "}))
        await ws.send(json.dumps({"type": "Speak", "text": "spoken at the flush"}))
        await ws.send(json.dumps({"type": "Flush"}))
        first = await _until(ws, log, lambda m: isinstance(m, dict) and m.get("type") == "Flushed")
        assert first["sequence_id"] == 0 and len(_audio(log)) / 2 / 16000 > 0.8
        # barge-in: a long answer, cleared after its first audio
        barge: list = []
        await ws.send(json.dumps({"type": "Speak", "text": LONG}))
        await ws.send(json.dumps({"type": "Flush"}))
        await _until(ws, barge, lambda m: isinstance(m, bytes))
        await ws.send(json.dumps({"type": "Clear"}))
        cleared = await _until(ws, barge, lambda m: isinstance(m, dict) and m.get("type") in ("Cleared", "Flushed"))
        assert cleared["type"] == "Cleared", "the cleared answer's flush was acknowledged as if spoken"
        assert 0 < len(_audio(barge)) / 2 / 16000 < 20
        # the socket goes on: an unknown message is a warning, the next turn is spoken, Close ends it
        after: list = []
        await ws.send(json.dumps({"type": "Shout"}))
        await ws.send(json.dumps({"type": "Speak", "text": "The next turn."}))
        await ws.send(json.dumps({"type": "Flush"}))
        await ws.send(json.dumps({"type": "Close"}))
        with pytest.raises(websockets.ConnectionClosedOK):
            await _until(ws, after, lambda m: False)
    warning = next(m for m in after if isinstance(m, dict) and m.get("type") == "Warning")
    assert warning["code"] == warning["warn_code"] == "UNKNOWN_MESSAGE_TYPE" and "Shout" in warning["description"]
    flushed = [m for m in after if isinstance(m, dict) and m.get("type") == "Flushed"]
    assert [m["sequence_id"] for m in flushed] == [2], flushed
    assert not [m for m in after if isinstance(m, dict) and m.get("type") == "Cleared"]
    assert 0.5 < len(_audio(after)) / 2 / 16000 < 3.0, "the next turn, and nothing of the cleared answer"


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_token_subprotocol_and_mulaw(compat, rate):
    log: list = []
    async with _connect(compat, subprotocol=True, encoding="mulaw", sample_rate=rate) as ws:
        assert ws.subprotocol == "token"
        await ws.send(json.dumps({"type": "Speak", "text": "Telephony audio, one byte a sample."}))
        await ws.send(json.dumps({"type": "Flush"}))
        await _until(ws, log, lambda m: isinstance(m, dict) and m.get("type") == "Flushed")
    assert 1.0 < len(_audio(log)) / rate < 5.0  # one byte a sample at the asked rate


@pytest.mark.parametrize(("key", "query", "status", "err_code", "says"), [
    ("not-a-key", {}, 401, "INVALID_AUTH", "API key"),
    (None, {"encoding": "mp3"}, 400, "INVALID_QUERY_PARAMETER", "encoding"),
    (None, {"encoding": "linear16", "container": "wav"}, 400, "INVALID_QUERY_PARAMETER", "container"),
    (None, {"sample_rate": "fast"}, 400, "INVALID_QUERY_PARAMETER", "sample_rate"),
    (None, {"model": "no-such-voice"}, 404, "NOT_FOUND", "voice"),
])
async def test_refused_handshakes_explain_themselves(compat, key, query, status, err_code, says):
    with pytest.raises(websockets.InvalidStatus) as caught:
        async with _connect(compat, key, **query):
            pass
    response = caught.value.response
    assert response.status_code == status
    assert says in response.headers["dg-error"]
    body = json.loads(response.body)
    assert body["err_code"] == err_code and body["err_msg"] == response.headers["dg-error"] and body["request_id"]


@pytest.mark.parametrize(("message", "says"), [
    ("not json", "JSON"),
    ("[1, 2]", "JSON"),
    (b"\x00\x01", "text frames"),
    (json.dumps({"type": "Speak"}), "text"),
    (json.dumps({"type": "Speak", "text": "x" * 2001}), "text"),
])
async def test_bad_messages_are_errors_that_close(compat, message, says):
    log: list = []
    async with _connect(compat) as ws:
        await _until(ws, log, lambda m: True)  # Metadata
        await ws.send(message)
        error = await _until(ws, log, lambda m: isinstance(m, dict) and m.get("type") == "Error")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 30)
    assert error["err_code"] and says in error["err_msg"] and error["description"] == error["err_msg"]
    assert ws.close_code in (1003, 1007, 1008)
