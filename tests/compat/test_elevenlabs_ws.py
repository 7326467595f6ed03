"""ElevenLabs' WebSocket protocol itself, spoken by a plain WebSocket client: the single-context socket
(key in the first message, alignment of every character, isFinal, close), barge-in through
close_context on the multi-context socket, and refusals. Assertions are about order and content,
never wall-clock time (the close_context latency is measured in bench/)."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control_plane"))

from gateway_helpers import settled_triton_counter  # noqa: E402

LONG = " ".join(f"This is sentence number {i} of a long answer that the caller is about to interrupt."
                for i in range(12))
CHUNKS = ["Every character ", "of this text gets a time. ", "The second sentence ", "ends the input."]


def _connect(compat, path: str, key: str | None = None, voice: str = "en-US-generic", **query):
    url = compat.base_url.replace("http://", "ws://") + f"/v1/text-to-speech/{voice}/{path}?{urlencode(query)}"
    headers = {"xi-api-key": key} if key else {}
    return websockets.connect(url, additional_headers=headers, max_size=None)


async def _until(ws, log: list, done) -> dict:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
        log.append(msg)
        if done(msg):
            return msg


def _audio(log: list, context_id: str | None = None) -> bytes:
    return b"".join(base64.b64decode(m["audio"]) for m in log
                    if m.get("audio") and m.get("contextId") == context_id)


async def test_stream_input_aligns_every_character_and_ends_with_the_audio(compat):
    log: list = []
    async with _connect(compat, "stream-input", output_format="pcm_16000", model_id="eleven_flash_v2_5",
                        sync_alignment="true", inactivity_timeout=30) as ws:
        await ws.send(json.dumps({"text": " ", "xi_api_key": compat.api_key, "voice_settings": {"speed": 1.0},
                                  "generation_config": {"chunk_length_schedule": [50, 120]}}))
        for chunk in CHUNKS:
            await ws.send(json.dumps({"text": chunk, "try_trigger_generation": True}))
        await ws.send(json.dumps({"text": ""}))
        await _until(ws, log, lambda m: m.get("isFinal") is True)
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 30)
    assert not [m for m in log if "error" in m], log
    seconds = len(_audio(log)) / 2 / 16000
    assert seconds > 1.5
    frames = [m["alignment"] for m in log if m.get("alignment")]
    assert [m["normalizedAlignment"] for m in log if m.get("alignment")] == frames
    assert "".join(c for f in frames for c in f["chars"]) == "".join(CHUNKS)
    # times restart at zero in every message: the spans add up to the audio, in order
    clock = 0.0
    for f in frames:
        assert len(f["chars"]) == len(f["charStartTimesMs"]) == len(f["charDurationsMs"])
        assert f["charStartTimesMs"] == sorted(f["charStartTimesMs"]) and min(f["charDurationsMs"]) >= 0
        clock += (f["charStartTimesMs"][-1] + f["charDurationsMs"][-1]) / 1000
    assert clock == pytest.approx(seconds, abs=0.05)


async def test_close_context_mid_utterance_stops_its_audio_and_its_triton_work(compat):
    metrics = compat.gateway.app.state.services.settings.triton_metrics_url
    before = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    log: list = []
    after_close: list = []
    async with _connect(compat, "multi-stream-input", compat.api_key, output_format="pcm_22050") as ws:
        await ws.send(json.dumps({"text": " ", "context_id": "turn-1", "voice_settings": {"stability": 0.5}}))
        await ws.send(json.dumps({"text": LONG, "context_id": "turn-1"}))
        await _until(ws, log, lambda m: m.get("contextId") == "turn-1" and bool(m.get("audio")))
        # the caller barges in: no flush came before this close_context
        await ws.send(json.dumps({"context_id": "turn-1", "close_context": True}))
        await _until(ws, log, lambda m: m.get("contextId") == "turn-1" and m.get("isFinal") is True)
        # the same socket, a new turn, ended as the clients end a turn: flush, then close_context
        await ws.send(json.dumps({"text": " ", "context_id": "turn-2"}))
        await ws.send(json.dumps({"text": "Sure, let me check that for you.", "context_id": "turn-2"}))
        await ws.send(json.dumps({"context_id": "turn-2", "flush": True}))
        await ws.send(json.dumps({"text": "", "context_id": "turn-2"}))  # Pipecat's keepalive changes nothing
        await ws.send(json.dumps({"context_id": "turn-2", "close_context": True}))
        await _until(ws, after_close, lambda m: m.get("contextId") == "turn-2" and m.get("isFinal") is True)
        await ws.send(json.dumps({"close_socket": True}))
        with pytest.raises(websockets.ConnectionClosedOK):
            while True:
                after_close.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    assert not [m for m in log + after_close if "error" in m]
    assert [m for m in after_close if m.get("contextId") == "turn-1"] == [], "turn-1 spoke after its isFinal"
    spoken = len(_audio(log, "turn-1")) / 2 / 22050
    assert 0 < spoken < 20, "turn-1 was played to its end (about 60 s of text), not cut short"
    assert len(_audio(after_close, "turn-2")) / 2 / 22050 > 1.0, "the flushed turn was not spoken in full"
    # Triton's work stopped: the 12 sentences of turn-1 are one request each; only those begun before
    # the close (plus turn-2's one) reached Triton, and none is still running
    after = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    assert after - before < 12, f"{after - before} piper requests for an interrupted answer and one sentence"
    assert await settled_triton_counter(metrics, "tts_model_active_requests", model="piper") == 0


async def test_refusals_are_errors_in_elevenlabs_shape(compat):
    async with _connect(compat, "multi-stream-input", "not-a-key") as ws:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert msg["error"] == "unauthorized" and msg["code"] == 401
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd.code == 1008
    async with _connect(compat, "stream-input", compat.api_key, output_format="pcm_12345") as ws:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert msg["error"] == "unsupported_output_format"
    # an unknown voice fails that context only: the socket speaks on
    log: list = []
    async with _connect(compat, "multi-stream-input", compat.api_key, voice="no-such-voice") as ws:
        await ws.send(json.dumps({"text": " ", "context_id": "a"}))
        msg = await _until(ws, log, lambda m: "error" in m)
        assert msg["contextId"] == "a" and msg["code"] == 404
