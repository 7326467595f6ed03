"""SIGTERM to a real `tts-gateway serve` process: streams in flight finish, new work is refused with 503
+ Retry-After while /ready says draining, and the process exits 0: what a rolling update needs."""

from __future__ import annotations

import asyncio
import json
import signal

import httpx
import pytest
import websockets
from fault_helpers import ServeProcess, eventually
from gateway_helpers import ADMIN_TOKEN

TEXT = " ".join(f"Sentence {i} of an answer long enough to still be streaming at shutdown." for i in range(24))
STREAM_TIMEOUT_S = 240  # generous: a busy 2-core machine serves three streams at once here


@pytest.fixture
def serve(triton_piper, tmp_path):
    # One-second pings: a WebSocket that stops reading while it streams is closed (1011) within seconds.
    server = ServeProcess(triton_piper, tmp_path, SHUTDOWN_GRACE_S="300", WS_PING_INTERVAL_S="1",
                          WS_PING_TIMEOUT_S="1").start()
    try:
        yield server.url, server.process
    finally:
        server.stop()


async def _http_stream(url: str, key: str, started: asyncio.Event) -> tuple[str, int]:
    received = 0
    headers, body = {"Authorization": f"Bearer {key}"}, {"text": TEXT, "format": "pcm"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=STREAM_TIMEOUT_S) as c, \
            c.stream("POST", "/v1/synthesize/stream", json=body) as r:
        assert r.status_code == 200
        try:
            async for chunk in r.aiter_raw():
                received += len(chunk)
                started.set()
        except httpx.HTTPError as exc:
            return type(exc).__name__, received
    return "complete", received


async def _ws_stream(url: str, key: str, started: asyncio.Event) -> list[dict]:
    events = []
    async with websockets.connect(url.replace("http://", "ws://") + "/v1/synthesize/ws",
                                  additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm"}))
        await ws.send(json.dumps({"type": "text", "text": TEXT}))
        await ws.send(json.dumps({"type": "end"}))
        async with asyncio.timeout(STREAM_TIMEOUT_S):
            async for message in ws:
                if isinstance(message, bytes):
                    started.set()
                else:
                    events.append(json.loads(message))
    return events


async def test_sigterm_drains_streams_and_refuses_new_work(serve):
    url, proc = serve
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        r = await c.post("/admin/v1/tenants", headers=admin, json={"name": "drain"})
        key = r.json()["api_key"]
    started = [asyncio.Event() for _ in range(3)]
    http = [asyncio.create_task(_http_stream(url, key, started[i])) for i in range(2)]
    ws = asyncio.create_task(_ws_stream(url, key, started[2]))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), timeout=60)

    proc.send_signal(signal.SIGTERM)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        async def draining() -> bool:
            ready = await c.get("/ready")
            return ready.status_code == 503 and any("draining" in reason for reason in ready.json()["reasons"])

        await eventually(draining, within=60, interval=0.1)  # the signal is handled on the server's loop
        refused = await c.post("/v1/synthesize/stream", json={"text": "Too late.", "format": "pcm"})
        assert refused.status_code == 503 and refused.headers["retry-after"].isdigit()
        assert refused.json()["error"]["code"] == "shutting_down"
    assert any(not t.done() for t in http) or not ws.done(), "the streams ended before the drain was observed"

    results = await asyncio.wait_for(asyncio.gather(*http), timeout=STREAM_TIMEOUT_S)
    assert all(ended == "complete" and received > 100_000 for ended, received in results), results
    events = await asyncio.wait_for(ws, timeout=STREAM_TIMEOUT_S)
    assert events[-1]["type"] == "done", events[-3:]
    assert events[-1]["audio_seconds"] > 60  # every sentence was spoken, with pings answered throughout
    assert await asyncio.to_thread(proc.wait, 30) == 0
