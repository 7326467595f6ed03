"""Fair shares over two control-plane replicas in front of the same Triton, sharing Postgres and Redis: a tenant
flooding through replica one until it is refused there is refused at replica two as well, once replica one's
snapshot has reached it, while a quiet tenant is admitted and served at replica two. A third replica with
sharing off (ADMISSION_SHARE_INTERVAL_S=0) admits the same flood: alone, with nothing in flight itself, it has no
reason to refuse, which is the hole the shared state closes.

As in test_fair_admission_gateway.py, the flood keeps one long stream of long sentences in flight through
replica one and the bound is 40 characters' time at the measured rate, far between the quiet tenant's few
characters and a sentence of the flood's. Every step waits for the state it needs (replica one's own load,
then replica two's view of it), never for a fixed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from gateway_helpers import Gateway, run_gateway, triton_counter

SENTENCE = ("While the agent looks up the account, this sentence keeps the speech engine busy with a long stretch "
            "of ordinary words, numbers spelled out like twenty-three, and a few more clauses after that.")
LONG = " ".join([SENTENCE] * 20)
BOUND_CHARS = 40
ROUNDS = 3
ATTEMPTS = 4  # per round: a request that lands between two of the flood's sentences is rightly admitted


@pytest.fixture(scope="module")
def replicas(triton_piper, pg_database, redis_server, tmp_path_factory):
    shared = {"database_url": pg_database.app_url, "redis_url": redis_server.url, "admission_max_wait_s": 0.05,
              "admission_min_inflight": 1}
    with run_gateway(tmp_path_factory.mktemp("gw-r1"), triton_piper, admission_share_interval_s=0.05,
                     **shared) as one, \
         run_gateway(tmp_path_factory.mktemp("gw-r2"), triton_piper, admission_share_interval_s=0.05,
                     **shared) as two, \
         run_gateway(tmp_path_factory.mktemp("gw-alone"), triton_piper, admission_share_interval_s=0,
                     **shared) as alone:
        yield one, two, alone


async def _until(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 (the gateways' own state, read from their threads)
            await asyncio.sleep(0.005)


def _admission(gateway: Gateway):
    return gateway.app.state.services.admission


def _bound(gateway: Gateway) -> None:
    """The bound in characters at this replica's rate, whatever this machine's speed (set before each decision:
    the rate follows the load)."""
    admission = _admission(gateway)
    admission.max_wait_s = BOUND_CHARS / admission.rate("piper")


async def _ask(client: httpx.AsyncClient, text: str) -> httpx.Response:
    return await client.post("/v1/synthesize/stream", json={"text": text, "format": "pcm"})


async def test_a_tenant_flooding_one_replica_is_refused_at_the_other_while_a_quiet_one_is_served(replicas):
    one, two, alone = replicas
    flood_id, flood_key = await one.tenant(tier="standard")
    quiet_id, quiet_key = await one.tenant(tier="standard")
    for n, gateway in enumerate((one, two)):  # each replica measures the rate (texts differ: no cache hits)
        async with gateway.client(flood_key) as c:
            for i in range(3):
                r = await c.post("/v1/synthesize", json={"text": f"Thanks for calling line {n}, ticket {i}.",
                                                         "format": "wav"})
                assert r.status_code == 200 and r.headers["X-Cache"] == "MISS"
    assert _admission(one).rate("piper") and _admission(two).rate("piper")
    mine = _admission(one).load("piper")
    seen_by_two = _admission(two).peers

    def flood_at_one() -> int:
        return mine.tenants[flood_id].inflight_chars if flood_id in mine.tenants else 0

    def flood_seen_by_two() -> int:
        remote = seen_by_two.engines.get("piper")
        return remote.tenants.get(flood_id, (0, 0.0))[0] if remote is not None else 0

    async with one.client(flood_key) as flood1, two.client(flood_key) as flood2, \
            alone.client(flood_key) as flood_alone, two.client(quiet_key) as quiet2:

        async def flood_stream() -> int:
            async with flood1.stream("POST", "/v1/synthesize/stream", json={"text": LONG, "format": "pcm"}) as r:
                assert r.status_code == 200
                return sum([len(b) async for b in r.aiter_raw()])

        flooding = asyncio.create_task(flood_stream())
        refused = {"one": 0, "two": 0}
        admitted_alone = quiet_served = 0
        for i in range(ROUNDS):
            for name, gateway, client, seen in (("one", one, flood1, flood_at_one),
                                                ("two", two, flood2, flood_seen_by_two)):
                for attempt in range(ATTEMPTS):  # until refused
                    await _until(lambda s=seen: (s() >= 100 and flood_at_one() >= 100) or flooding.done())
                    assert not flooding.done()
                    _bound(gateway)
                    r = await _ask(client, f"One more question for {name}, {i}.{attempt}.")
                    if r.status_code == 503:
                        assert r.json()["error"]["code"] == "engine_overloaded"
                        assert int(r.headers["Retry-After"]) >= 1
                        refused[name] += 1
                        break
                    assert r.status_code == 200, r.text  # between two sentences of the flood: rightly admitted
            # The replica with sharing off, asked the same at the same time: admitted, every time.
            await _until(lambda: flood_at_one() >= 100 or flooding.done())
            r = await _ask(flood_alone, f"One more question for the lone replica, {i}.")
            assert r.status_code == 200, r.text
            admitted_alone += 1
            # The quiet tenant beside the flood, at replica two: admitted and served by the engine.
            _bound(two)
            served = await _ask(quiet2, ["Hi.", "Yes.", "Sure."][i])
            assert served.status_code == 200, served.text
            assert served.headers["X-Cache"] == "MISS" and len(served.content) > 1000
            quiet_served += 1
        assert refused == {"one": ROUNDS, "two": ROUNDS}
        assert admitted_alone == ROUNDS
        assert await flooding > 100_000

    async with httpx.AsyncClient(base_url=two.url) as c:
        sharing = (await c.get("/health")).json()["admission_sharing"]
    assert sharing["ok"] is True and sharing["replicas"] >= 1

    async def decisions(gateway: Gateway, tenant: str, outcome: str) -> float:
        return await triton_counter(f"{gateway.url}/metrics", "tts_tenant_admission_decisions_total",
                                    engine="piper", tenant=tenant, outcome=outcome)

    assert await decisions(two, flood_id, "shed") == ROUNDS
    assert await decisions(two, quiet_id, "shed") == 0
    assert await decisions(two, quiet_id, "admitted") == quiet_served == ROUNDS
    assert await decisions(alone, flood_id, "shed") == 0
