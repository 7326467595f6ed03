"""Admission control through the real gateway and Triton: an engine with work ahead refuses new requests
at once (503 + Retry-After, a WebSocket error with `retry_after_s`), serves cached ones, charges and
records nothing for what it refused, and admits again once the work is done.

The engine is made "busy" deterministically: the bound is 50 ms and one long stream is in flight,
so the expected wait is seconds whatever the machine's speed (no timing in the assertions).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from gateway_helpers import run_gateway, triton_counter

LONG = " ".join(["This long answer keeps the engine busy while the other requests arrive."] * 30)
WARM = "Thanks for calling, how can I help?"


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-admission"), triton_piper, admission_max_wait_s=0.05,
                     admission_min_inflight=1) as gw:
        yield gw


async def _metric(gw, name: str, **labels: str) -> float:
    return await triton_counter(f"{gw.url}/metrics", name, **labels)  # any Prometheus page reads the same


def _assert_shed(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    error = r.json()["error"]
    assert error["code"] == "engine_overloaded" and error["retry_after_s"] >= 1
    assert "piper engine is at capacity" in error["message"]


async def _ws_error(gw, key: str) -> dict:
    url = gw.url.replace("http://", "ws://") + "/v1/synthesize/ws"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm", "context_id": "a"}))
        await ws.send(json.dumps({"type": "text", "text": "Are you still there?", "context_id": "a"}))
        await ws.send(json.dumps({"type": "end", "context_id": "a"}))
        while True:
            msg = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(msg, str) and json.loads(msg)["type"] in ("error", "done"):
                return json.loads(msg)


async def test_busy_engine_sheds_at_once_and_recovers(gateway):
    _, key = await gateway.tenant()
    async with gateway.client(key) as c:
        warm = await c.post("/v1/synthesize", json={"text": WARM, "format": "wav"})  # measures the rate; cached
        assert warm.status_code == 200
        # Served from the cache: the tenant's next requests may be hits too, so none is refused before it is read
        # (api/admission_gate.py): they are all decided by the flow, which serves a hit under overload.
        first_hit = await c.post("/v1/synthesize", json={"text": WARM, "format": "wav"})
        assert first_hit.headers["X-Cache"] == "HIT"
        async with c.stream("POST", "/v1/synthesize/stream", json={"text": LONG, "format": "pcm"}) as long:
            assert long.status_code == 200
            charged = [int(r.headers["X-Characters"]) for r in (warm, first_hit, long)]
            chunks = long.aiter_raw()
            assert await chunks.__anext__()  # audio is flowing: the long text's work is in flight

            _assert_shed(await c.post("/v1/synthesize/stream", json={"text": "Is anyone there?", "format": "pcm"}))
            _assert_shed(await c.post("/v1/synthesize", json={"text": "Hello again, one moment.", "format": "wav"}))
            openai = await c.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hi."})
            assert openai.status_code == 503 and int(openai.headers["Retry-After"]) >= 1
            error = await _ws_error(gateway, key)
            assert error["type"] == "error" and error["code"] == "engine_overloaded"
            assert error["context_id"] == "a" and error["retry_after_s"] >= 1

            hit = await c.post("/v1/synthesize", json={"text": WARM, "format": "wav"})  # costs the engine nothing
            assert hit.status_code == 200 and hit.headers["X-Cache"] == "HIT"
            charged.append(int(hit.headers["X-Characters"]))
            async for _ in chunks:
                pass
        again = await c.post("/v1/synthesize/stream", json={"text": "Is anyone there?", "format": "pcm"})
        assert again.status_code == 200 and len(again.content) > 1000
        charged.append(int(again.headers["X-Characters"]))

        usage = (await c.get("/v1/tenant/usage")).json()["totals"]
    # warm-up, its hit, the long stream, the cache hit, the retry: the four refusals cost nothing and are not usage
    assert usage["requests"] == 5
    assert usage["characters"] == sum(charged)
    assert await _metric(gateway, "tts_admission_decisions_total", engine="piper", outcome="shed") == 4
    assert await _metric(gateway, "tts_admission_decisions_total", engine="piper", outcome="admitted") == 3
    assert await _metric(gateway, "tts_engine_backlog_characters", engine="piper") == 0
    assert await _metric(gateway, "tts_engine_service_rate_characters_per_second", engine="piper") > 0
