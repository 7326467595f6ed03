"""WS /v1/synthesize/ws: incremental text, audio frames, marks, done; auth and protocol errors."""

from __future__ import annotations

import json

import pytest
import websockets
from gateway_helpers import run_gateway


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-ws"), triton_piper) as gw:
        yield gw


@pytest.fixture(scope="module")
async def tenant_key(gateway):
    return (await gateway.tenant())[1]


def _ws_url(gateway, query: str = "") -> str:
    return gateway.url.replace("http://", "ws://") + "/v1/synthesize/ws" + query


async def _collect(ws):
    frames, events = [], []
    async for msg in ws:
        if isinstance(msg, bytes):
            frames.append(msg)
        else:
            events.append(json.loads(msg))
    return frames, events


async def test_incremental_text_with_marks(gateway, tenant_key):
    async with websockets.connect(_ws_url(gateway), additional_headers={"Authorization": f"Bearer {tenant_key}"}) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm", "sample_rate": 16000}))
        await ws.send(json.dumps({"type": "text", "text": "Hello there. How "}))
        await ws.send(json.dumps({"type": "mark", "name": "middle"}))
        await ws.send(json.dumps({"type": "text", "text": "are you today"}))
        await ws.send(json.dumps({"type": "flush"}))
        await ws.send(json.dumps({"type": "text", "text": "Fine."}))
        await ws.send(json.dumps({"type": "end"}))
        frames, events = await _collect(ws)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "done" and "mark" in kinds
    assert events[0]["sample_rate"] == 16000 and events[0]["format"] == "pcm"
    done = events[-1]
    samples = sum(len(f) for f in frames) // 2
    assert len(frames) >= 3
    assert done["audio_seconds"] == pytest.approx(samples / 16000, abs=1e-3)
    assert done["characters"] == len("Hello there.") + len("How are you today") + len("Fine.")
    mark = next(e for e in events if e["type"] == "mark")
    assert mark["name"] == "middle" and 0.3 < mark["time_s"] < done["audio_seconds"]


async def test_query_key_and_wav_stream(gateway, tenant_key):
    async with websockets.connect(_ws_url(gateway, f"?api_key={tenant_key}")) as ws:
        await ws.send(json.dumps({"type": "start", "format": "wav"}))
        await ws.send(json.dumps({"type": "text", "text": "One sentence."}))
        await ws.send(json.dumps({"type": "end"}))
        frames, events = await _collect(ws)
    assert b"".join(frames)[:4] == b"RIFF" and events[-1]["type"] == "done"


@pytest.mark.parametrize(
    ("query", "messages", "code"),
    [
        ("?api_key=tts_wrong", [], "unauthorized"),
        (None, [{"type": "text", "text": "no start"}], "invalid_message"),
        (None, [{"type": "start", "format": "aiff"}], "unsupported_format"),
        (None, [{"type": "start", "speed": 9}], "validation_error"),
        (None, [{"type": "start", "voice_id": "0b6d7a8e-0000-4000-8000-000000000000"}], "voice_not_found"),
    ],
)
async def test_errors_close_with_a_message(gateway, tenant_key, query, messages, code):
    url = _ws_url(gateway, query if query is not None else f"?api_key={tenant_key}")
    async with websockets.connect(url) as ws:
        for m in messages:
            await ws.send(json.dumps(m))
        _, events = await _collect_tolerant(ws)
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] in (code, "invalid_api_key", "unauthorized") if code == "unauthorized" else \
        events[-1]["code"] == code


async def _collect_tolerant(ws):
    frames, events = [], []
    try:
        async for msg in ws:
            (frames if isinstance(msg, bytes) else events).append(msg if isinstance(msg, bytes) else json.loads(msg))
    except websockets.ConnectionClosedError:
        pass
    return frames, events
