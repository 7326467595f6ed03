"""Cartesia's WebSocket protocol itself, spoken by a plain WebSocket client: contexts whose text arrives in
pieces (`continue`) are one utterance with one `done`, word timestamps across the pieces, `flush_done`,
`cancel` (barge-in) stopping the context's audio and its Triton work, and errors in Cartesia's shape.
Assertions are about order and content, never wall-clock time (the cancel latency is measured in bench/)."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
import websockets
from compat_helpers import SPOKEN, SPOKEN_TEXT, assert_render_length, pcm16, reference_seconds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control_plane"))

from gateway_helpers import settled_triton_counter  # noqa: E402

LONG = " ".join(f"This is sentence number {i} of a long answer that the caller is about to interrupt."
                for i in range(12))
PIECES = [" ".join(SPOKEN_TEXT.split()[i:i + 3]) + " " for i in range(0, len(SPOKEN_TEXT.split()), 3)]


def _connect(compat, key: str | None = None, **query):
    url = compat.base_url.replace("http://", "ws://") + f"/tts/websocket?{urlencode(query)}"
    headers = {"X-API-Key": key, "Cartesia-Version": "2026-03-01"} if key else {}
    return websockets.connect(url, additional_headers=headers, max_size=None)


def _msg(cid: str, transcript: str, *, more: bool = True, rate: int = 16000, **extra) -> str:
    return json.dumps({"context_id": cid, "model_id": "sonic-3", "transcript": transcript, "continue": more,
                       "voice": {"mode": "id", "id": "en-US-generic"}, "language": "en",
                       "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": rate},
                       **extra})


async def _until(ws, log: list, done) -> dict:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
        log.append(msg)
        if done(msg):
            return msg


def _audio(log: list, cid: str) -> bytes:
    return b"".join(base64.b64decode(m["data"]) for m in log if m["type"] == "chunk" and m["context_id"] == cid)


async def test_pieces_with_continue_are_one_utterance_with_word_timestamps(compat):
    log: list = []
    async with _connect(compat, compat.api_key) as ws:
        for piece in PIECES:
            await ws.send(_msg("turn", piece, add_timestamps=True))
        await ws.send(_msg("turn", "", more=False, add_timestamps=True))
        await _until(ws, log, lambda m: m["type"] == "done")
    assert [m["type"] for m in log].count("done") == 1 and log[-1] == {
        "type": "done", "done": True, "status_code": 200, "context_id": "turn"}
    assert not [m for m in log if m["type"] == "error"], log
    seconds = pcm16(_audio(log, "turn")).size / 16000
    text = "".join(PIECES)
    assert_render_length(seconds, await reference_seconds(compat))
    stamps = [m["word_timestamps"] for m in log if m["type"] == "timestamps"]
    words = [w for s in stamps for w in s["words"]]
    starts = [t for s in stamps for t in s["start"]]
    ends = [t for s in stamps for t in s["end"]]
    assert words == text.split()
    # one clock for the whole context: the second sentence's words come after the first's
    assert starts == sorted(starts) and all(a < b for a, b in zip(starts, ends, strict=True))
    second = len(SPOKEN[0].split())
    assert ends[-1] <= seconds + 0.01 and starts[second] > ends[second - 2]


async def test_flush_answers_flush_done_after_its_audio(compat):
    log: list = []
    async with _connect(compat, api_key=compat.api_key) as ws:  # the key in the query (browsers)
        await ws.send(_msg("c", "Speak this part now", flush=True))
        flushed = await _until(ws, log, lambda m: m["type"] == "flush_done")
        assert flushed["flush_id"] == 1 and flushed["context_id"] == "c"
        assert _audio(log, "c"), "flush_done came before the flushed audio"
        await ws.send(_msg("c", " and this part later.", more=False))
        await _until(ws, log, lambda m: m["type"] == "done")
    assert pcm16(_audio(log, "c")).size / 16000 > 1.5


async def test_text_without_a_sentence_end_is_spoken_after_the_buffer_delay(compat):
    log: list = []
    async with _connect(compat, compat.api_key) as ws:
        await ws.send(_msg("d", "No full stop at the end", max_buffer_delay_ms=200))
        await _until(ws, log, lambda m: m["type"] == "chunk")
        await ws.send(_msg("d", "", more=False))
        await _until(ws, log, lambda m: m["type"] == "done")
    assert pcm16(_audio(log, "d")).size / 16000 > 0.8


async def test_cancel_stops_the_context_and_its_triton_work(compat):
    metrics = compat.gateway.app.state.services.settings.triton_metrics_url
    before = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    log: list = []
    async with _connect(compat, compat.api_key) as ws:
        await ws.send(_msg("turn-1", LONG, max_buffer_delay_ms=0))
        await _until(ws, log, lambda m: m["type"] == "chunk" and m["context_id"] == "turn-1")
        await ws.send(json.dumps({"context_id": "turn-1", "cancel": True}))
        cancelled_at = len(log)
        await ws.send(_msg("turn-2", "Sure, let me check that for you.", more=False))
        first_of_turn_2 = await _until(ws, log, lambda m: m["context_id"] == "turn-2")
        index = log.index(first_of_turn_2)
        await _until(ws, log, lambda m: m["type"] == "done" and m["context_id"] == "turn-2")
    assert not [m for m in log if m["type"] == "error"], log
    # nothing of turn-1 once the server has read the next message; no done for a cancelled context
    assert [m for m in log[index:] if m["context_id"] == "turn-1"] == []
    assert not [m for m in log if m["type"] == "done" and m["context_id"] == "turn-1"]
    spoken = pcm16(_audio(log, "turn-1")).size / 16000
    assert 0 < spoken < 20, "turn-1 was played to its end (about 60 s of text), not cut short"
    assert cancelled_at <= index and pcm16(_audio(log, "turn-2")).size / 16000 > 1.0
    after = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    assert after - before < 12, f"{after - before} piper requests for an interrupted answer and one sentence"
    assert await settled_triton_counter(metrics, "tts_model_active_requests", model="piper") == 0


async def test_errors_in_cartesia_shape_leave_the_socket_open(compat):
    log: list = []
    async with _connect(compat, compat.api_key) as ws:
        await ws.send(_msg("bad-rate", "Hello.", rate=11025))
        error = await _until(ws, log, lambda m: m["type"] == "error")
        assert error["context_id"] == "bad-rate" and error["status_code"] == 400
        assert error["error_code"] == "unsupported_sample_rate" and error["done"] is True
        assert error["title"] and error["message"] == error["error"]
        await ws.send("not json")
        error = await _until(ws, log, lambda m: m["type"] == "error")
        assert error["context_id"] is None and error["error_code"] == "invalid_message"
        await ws.send(json.dumps({"transcript": "Where does this go?", "continue": False}))
        error = await _until(ws, log, lambda m: m["type"] == "error")
        assert "context_id" in error["message"]
        await ws.send(_msg("ended", "Done.", more=False))
        await _until(ws, log, lambda m: m["type"] == "done")
        await ws.send(_msg("good", "Still speaking.", more=False))
        await _until(ws, log, lambda m: m["type"] == "done" and m["context_id"] == "good")
        await ws.send(json.dumps({"context_id": "gone", "cancel": True}))  # an unknown context: nothing happens
        await ws.send(_msg("last", "The end.", more=False))
        await _until(ws, log, lambda m: m["type"] == "done" and m["context_id"] == "last")


async def test_refused_keys_close_the_socket(compat):
    async with _connect(compat, "not-a-key") as ws:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert msg["type"] == "error" and msg["status_code"] == 401 and msg["error_code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd.code == 1008
