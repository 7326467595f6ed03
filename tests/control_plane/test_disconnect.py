"""A client that gives up on a whole-body request stops costing engine time.

POST /v1/synthesize renders the whole file before it answers; when the client disconnects first,
the handler is cancelled (deps.with_cancellation) and the engine requests still to come are never
sent, the one in flight is cancelled, and usage records the request as 499.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fault_helpers import eventually
from gateway_helpers import run_gateway, settled_triton_counter, triton_counter

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
    started = await settled_triton_counter(metrics, "tts_requests_total", model="piper")
    request = asyncio.create_task(client.post("/v1/synthesize", json={"text": TEXT, "format": "wav"}))

    async def engine_at_work() -> bool:  # its first sentences are done
        return await triton_counter(metrics, "tts_requests_total", model="piper") > started

    await eventually(engine_at_work, within=120, interval=0.1)  # then walk away (80 sentences take far longer)
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
    await client.aclose()
    after = await settled_triton_counter(metrics, "nv_inference_request_success", model="piper")
    assert after - before < 80, f"{after - before} of 80 sentences were still synthesised for a client that left"
    assert await settled_triton_counter(metrics, "tts_model_active_requests", model="piper") == 0
    async with gateway.client(key) as c:
        async def totals() -> dict:
            return (await c.get("/v1/tenant/usage")).json()["totals"]

        async def recorded() -> bool:  # the usage record is written as the cancelled handler unwinds
            return bool((await totals())["requests"])

        await eventually(recorded, within=60, interval=0.1)
        usage = await totals()
    assert usage["requests"] == 1 and usage["errors"] == 1  # recorded, as 499 (client gone)
