"""Triton killed under live streams: clean ends, fast 503s while it is down, recovery on its own.

A Triton of the test's own serves piper (one response per sentence, so a long text streams for
seconds); the gateway is the real app under uvicorn. Triton is SIGKILLed while HTTP and WebSocket
streams are mid-way, then restarted on the same ports; the gateway is never restarted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
import websockets
from fault_helpers import KillableTriton, eventually
from gateway_helpers import run_gateway

SENTENCES = " ".join(f"This is sentence number {i} of a long answer that keeps the stream busy." for i in range(60))


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    server = KillableTriton(tmp_path_factory.mktemp("killable-triton"), models=["piper"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(triton, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-faults"), triton) as gw:
        yield gw


async def _metric(gateway, name: str) -> float:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        text = (await c.get("/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
               or line.startswith(name + "{"))


async def _http_stream(gateway, key: str, started: asyncio.Event) -> dict:
    """Read a long stream; returns how it ended (never hangs: every read has a timeout)."""
    received = 0
    body = {"text": SENTENCES, "format": "pcm"}
    async with gateway.client(key, timeout=20) as c, c.stream("POST", "/v1/synthesize/stream", json=body) as r:
        assert r.status_code == 200
        try:
            async for chunk in r.aiter_raw():
                received += len(chunk)
                started.set()
        except httpx.HTTPError as exc:  # the chunked body was cut off: no terminating chunk
            return {"received": received, "ended": type(exc).__name__}
    return {"received": received, "ended": "complete"}


async def _ws_stream(gateway, key: str, started: asyncio.Event) -> dict:
    url = gateway.url.replace("http://", "ws://") + "/v1/synthesize/ws"
    received, events = 0, []
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm", "sample_rate": 16000}))
        await ws.send(json.dumps({"type": "text", "text": SENTENCES}))
        await ws.send(json.dumps({"type": "end"}))
        try:
            async with asyncio.timeout(30):
                async for message in ws:
                    if isinstance(message, bytes):
                        received += len(message)
                        started.set()
                    else:
                        events.append(json.loads(message))
        except websockets.ConnectionClosedError:
            pass
        close_code = ws.close_code
    return {"received": received, "events": events, "close_code": close_code}


async def test_killed_triton_ends_streams_cleanly_and_service_resumes(triton, gateway, caplog):
    _, key = await gateway.tenant()
    started = [asyncio.Event() for _ in range(4)]
    http = [asyncio.create_task(_http_stream(gateway, key, started[i])) for i in range(2)]
    ws = [asyncio.create_task(_ws_stream(gateway, key, started[2 + i])) for i in range(2)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), timeout=60)
    assert await _metric(gateway, "tts_active_streams") == 4

    with caplog.at_level(logging.WARNING):
        triton.kill()
        killed_at = time.monotonic()
        http_results = await asyncio.wait_for(asyncio.gather(*http), timeout=60)
        ws_results = await asyncio.wait_for(asyncio.gather(*ws), timeout=60)
    ended_within = time.monotonic() - killed_at

    for result in http_results:  # a terminated chunked body, not a clean end that would pass for complete audio
        assert result["ended"] != "complete" and result["received"] > 0, result
    for result in ws_results:
        errors = [e for e in result["events"] if e["type"] == "error"]
        assert errors and errors[-1]["code"] == "engine_unavailable", result["events"]
        assert not any(e["type"] == "done" for e in result["events"])
        assert result["close_code"] is not None
    assert ended_within < 30  # at once, not at the request timeout; room for a busy machine
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("control_plane")]
    assert logged, "the cut streams were not logged"
    assert not any("sentence number" in r.getMessage() for r in caplog.records)  # request text never logged

    # While Triton is down: 503 + Retry-After with the JSON error, at once.
    async with gateway.client(key, timeout=20) as c:
        began = time.monotonic()
        r = await c.post("/v1/synthesize", json={"text": "Are you there?", "format": "wav"})
        assert time.monotonic() - began < 10  # at once, not after a connect timeout
        assert r.status_code == 503 and r.headers["retry-after"].isdigit()
        assert r.json()["error"]["code"] == "engine_unavailable"
        ready = await c.get("/ready")
        assert ready.status_code == 503 and any("triton" in reason for reason in ready.json()["reasons"])
    assert await _metric(gateway, "tts_active_streams") == 0  # nothing leaked

    # Triton comes back on the same address: service resumes without touching the gateway.
    triton.start()

    async def synthesizes() -> bool:
        async with gateway.client(key, timeout=20) as c:
            r = await c.post("/v1/synthesize", json={"text": "Back again.", "format": "wav"})
        return r.status_code == 200 and r.content[:4] == b"RIFF"

    await eventually(synthesizes, within=60)  # without a gateway restart
    async with gateway.client(key, timeout=20) as c:
        r = await c.post("/v1/synthesize/stream", json={"text": "Streaming again. Two sentences.", "format": "pcm"})
        assert r.status_code == 200 and len(r.content) > 1000
    assert await _metric(gateway, "tts_active_streams") == 0
