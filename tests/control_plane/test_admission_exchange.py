"""Admission state exchanged through a real Redis (adapters/admission_exchange.py): a replica's load reaches the
others within a few intervals, a replica that stops renewing drops out after its TTL, and a Redis outage
empties the view (each replica decides alone, `tts_admission_sharing_up` 0, one warning) until Redis is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis
from fault_helpers import KillableRedis

from control_plane.adapters.admission_exchange import AdmissionExchange
from control_plane.metrics import Metrics
from control_plane.services.admission import Admission
from tts_contract.fairness import Share

INTERVAL_S = 0.05
FLOOD = Share("flood", 3.0)


def _sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def _until(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 (state the exchange's own task updates: no event to await)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def _replicas(url: str, n: int, metrics: Metrics | None = None) -> AsyncIterator[list[AdmissionExchange]]:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    exchanges = [AdmissionExchange(client, Admission(1.0, 1), INTERVAL_S, metrics if i == 0 else None,
                                   replica=f"test-{id(client)}-{i}") for i in range(n)]
    for exchange in exchanges:
        exchange.start()
    try:
        yield exchanges
    finally:
        for exchange in exchanges:
            await exchange.stop()
        await client.aclose()


async def test_a_replica_s_load_reaches_the_others_and_leaves_with_it(redis_server) -> None:
    own_db = redis_server.url.rsplit("/", 1)[0] + "/7"  # apart from apps of other tests on the same server
    async with _replicas(own_db, 3) as (one, two, three):
        one.admission.admit("piper", "r1", 120, FLOOD)
        two.admission.admit("piper", "r2", 30, FLOOD)
        await _until(lambda: "piper" in three.peers.engines
                     and three.peers.engines["piper"].tenants.get("flood", (0, 0))[0] == 150)
        remote = three.peers.engines["piper"]
        assert remote.tenants["flood"] == (150, 3.0) and remote.inflight == 2 and three.peers.replicas == 2
        assert three.up
        # Replica one stops renewing (hung or killed: no goodbye): gone from the others after its TTL.
        assert one._task is not None
        one._task.cancel()
        await _until(lambda: three.peers.replicas == 1)
        assert three.peers.engines["piper"].tenants["flood"] == (30, 3.0)
        # Replica two leaves cleanly: at once.
        await two.stop()
        await _until(lambda: three.peers.replicas == 0)
        assert three.peers.engines == {}


@pytest.fixture
def killable_redis():
    server = KillableRedis()
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


async def test_a_redis_outage_leaves_each_replica_deciding_alone_until_it_is_back(killable_redis, caplog) -> None:
    metrics = Metrics()
    async with _replicas(killable_redis.url, 2, metrics) as (one, two):
        two.admission.started("piper", "r2", 80, tenant="flood")
        await _until(lambda: "piper" in one.peers.engines and one.peers.replicas == 1)
        assert _sample(metrics, "tts_admission_sharing_up") == 1.0
        assert _sample(metrics, "tts_admission_peer_replicas") == 1.0
        with caplog.at_level(logging.WARNING, logger="control_plane.adapters.admission_exchange"):
            killable_redis.kill()
            await _until(lambda: one.failures >= 5 and two.failures >= 5)
            assert one.peers.engines == {} and one.peers.replicas == 0  # its own load only
            assert not one.up and _sample(metrics, "tts_admission_sharing_up") == 0.0
            assert _sample(metrics, "tts_redis_errors_total", operation="admission_exchange") >= 5
            outage = [r for r in caplog.records if "admission sharing unavailable" in r.getMessage()]
        assert len(outage) == 2  # one warning per replica and outage, not one per interval
        killable_redis.start()
        await _until(lambda: one.up and one.peers.replicas == 1, timeout_s=60)
        assert one.peers.engines["piper"].tenants["flood"] == (80, 1.0)
        assert [r for r in caplog.records if "admission sharing unavailable" in r.getMessage()] == outage
