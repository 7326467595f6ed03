"""Fair shares through the real gateway and Triton: while one tenant floods the engine (its own streams in
flight, its new requests refused at once with its own Retry-After), a quiet tenant is admitted and served.

The flooding tenant has one long stream of long sentences in flight (read as it comes); before each round
the test waits for the gateway's own admission state to show a sentence of it in flight. The bound
(set to 40 characters' time at the measured rate) sits far between the quiet tenant's few-character
request (its wait under equal shares is its own first segment's time, whatever the flood's backlog) and
the flooding tenant's (a sentence of its own in flight).
"""

from __future__ import annotations

import asyncio

import pytest
from gateway_helpers import run_gateway, triton_counter

SENTENCE = ("While the agent looks up the account, this sentence keeps the speech engine busy with a long stretch "
            "of ordinary words, numbers spelled out like twenty-three, and a few more clauses after that.")
LONG = " ".join([SENTENCE] * 12)
WARM = "Thanks for calling, how can I help?"


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-fair"), triton_piper, admission_max_wait_s=0.05,
                     admission_min_inflight=1) as gw:
        yield gw


async def _until(check, timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 (the gateway's own state, read from its thread: no event to await)
            await asyncio.sleep(0.005)


async def test_flooding_tenant_is_refused_while_the_quiet_one_is_served(gateway):
    flood_id, flood_key = await gateway.tenant(tier="standard")
    quiet_id, quiet_key = await gateway.tenant(tier="standard")
    load = gateway.app.state.services.admission.load("piper")
    async with gateway.client(flood_key) as flood, gateway.client(quiet_key) as quiet:
        for i in range(3):  # the rate is measured
            warm = await flood.post("/v1/synthesize", json={"text": f"{WARM} {i}", "format": "wav"})
            assert warm.status_code == 200
        assert load.rate
        # The bound in characters of the measured rate, whatever this machine's speed: 40 characters' time, far
        # above the quiet tenant's few characters and far below the flood's sentence in flight.
        gateway.app.state.services.admission.max_wait_s = 40 / load.rate

        async def flood_stream() -> int:
            async with flood.stream("POST", "/v1/synthesize/stream", json={"text": LONG, "format": "pcm"}) as r:
                assert r.status_code == 200
                return sum([len(b) async for b in r.aiter_raw()])

        flooding = asyncio.create_task(flood_stream())  # the flood's stream, read as it comes
        shed = quiet_served = 0
        for i in range(3):
            await _until(lambda: load.tenants[flood_id].inflight_chars >= 100 or flooding.done())
            assert not flooding.done()
            r = await flood.post("/v1/synthesize/stream", json={"text": f"One more question, {i}.", "format": "pcm"})
            if r.status_code == 503:
                assert r.json()["error"]["code"] == "engine_overloaded" and int(r.headers["Retry-After"]) >= 1
                shed += 1
            else:  # its segment ended between the check and the request: admitted, as it should be then
                assert r.status_code == 200, r.text
            served = await quiet.post("/v1/synthesize/stream", json={"text": ["Hi.", "Yes.", "Sure."][i],
                                                                     "format": "pcm"})
            assert served.status_code == 200, served.text  # never refused beside the flood
            assert served.headers["X-Cache"] == "MISS" and len(served.content) > 1000  # real audio from the engine
            quiet_served += 1
        assert shed >= 2
        assert await flooding > 100_000

    async def decisions(tenant: str, outcome: str) -> float:
        return await triton_counter(f"{gateway.url}/metrics", "tts_tenant_admission_decisions_total",
                                    engine="piper", tier="standard", tenant=tenant, outcome=outcome)

    assert await decisions(flood_id, "shed") == shed
    assert await decisions(quiet_id, "shed") == 0
    assert await decisions(quiet_id, "admitted") == quiet_served == 3
