"""A client that gives up on a whole-body request stops costing engine time.

POST /v1/synthesize renders the whole file before it answers; when the client disconnects first,
the handler is cancelled (deps.with_cancellation) and the engine requests still to come are never
sent, the one in flight is cancelled, and usage records the request as 499.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from gateway_helpers import run_gateway, settled_triton_counter

TEXT = " ".join(f"Sentence {i} of a long document that nobody will wait for." for i in range(80))


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-disconnect"), triton_piper) as gw:
        yield gw


async def test_disconnect_cancels_a_whole_body_request(gateway):
    _, key = await gateway.tenant()
    metrics = gateway.app.state.services.settings.triton_metrics_url
    before = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    client = httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    request = asyncio.create_task(client.post("/v1/synthesize", json={"text": TEXT, "format": "wav"}))
    await asyncio.sleep(1.0)  # the engine is at work on it: walk away (80 sentences take far longer)
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
    await client.aclose()
    after = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    assert after - before < 80, f"{after - before} of 80 sentences were still synthesised for a client that left"
    assert await settled_triton_counter(metrics, "tts_model_active_requests", model="piper") == 0
    async with gateway.client(key) as c:
        for _ in range(100):  # the usage record is written as the cancelled handler unwinds
            totals = (await c.get("/v1/tenant/usage")).json()["totals"]
            if totals["requests"]:
                break
            await asyncio.sleep(0.1)
    assert totals["requests"] == 1 and totals["errors"] == 1  # recorded, as 499 (client gone)
