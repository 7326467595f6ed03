"""Redis killed and restarted under a running gateway, in both REDIS_FAILURE_MODEs.

`open`: synthesis goes on with the replica's own limits, /ready stays 200; `closed`: 503
`limits_unavailable` with Retry-After and /ready 503. Both: `tts_redis_up` 0 and
`tts_redis_errors_total` counting, a warning logged, and recovery once Redis is back, without a restart.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from fault_helpers import KillableRedis, eventually
from gateway_helpers import run_gateway


@pytest.fixture(scope="module")
def redis():
    server = KillableRedis()
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


@pytest.fixture(scope="module")
def gateways(redis, triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-open"), triton_piper, redis_url=redis.url,
                     redis_failure_mode="open") as fail_open, \
         run_gateway(tmp_path_factory.mktemp("gw-closed"), triton_piper, redis_url=redis.url,
                     redis_failure_mode="closed") as fail_closed:
        yield {"open": fail_open, "closed": fail_closed}


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


async def _synthesize(gateway, key: str) -> httpx.Response:
    async with gateway.client(key, timeout=30) as c:
        return await c.post("/v1/synthesize", json={"text": "Is Redis there?", "format": "wav"})


async def test_redis_outage_fails_open_or_closed_and_recovers(redis, gateways, caplog):
    keys = {mode: (await gw.tenant())[1] for mode, gw in gateways.items()}
    for mode, gw in gateways.items():
        assert (await _synthesize(gw, keys[mode])).status_code == 200

    redis.kill()
    with caplog.at_level(logging.WARNING):
        began = time.monotonic()
        opened = await _synthesize(gateways["open"], keys["open"])
        closed = await _synthesize(gateways["closed"], keys["closed"])
        assert time.monotonic() - began < 10  # no hanging on the dead connection
    assert opened.status_code == 200 and opened.content[:4] == b"RIFF"
    assert closed.status_code == 503 and closed.headers["retry-after"].isdigit()
    assert closed.json()["error"]["code"] == "limits_unavailable"
    assert any("redis unavailable" in r.getMessage() for r in caplog.records)
    for mode, gw in gateways.items():
        async with gw.client() as c:
            text = (await c.get("/metrics")).text
            ready = await c.get("/ready")
        assert _metric(text, "tts_redis_up") == 0 and _metric(text, "tts_redis_errors_total") >= 1, mode
        assert ready.status_code == (200 if mode == "open" else 503), (mode, ready.text)

    redis.start()  # same port, empty: limits start over, quotas are re-seeded from the usage table

    async def recovered() -> bool:
        return (await _synthesize(gateways["closed"], keys["closed"])).status_code == 200

    await eventually(recovered, within=60)
    assert (await _synthesize(gateways["open"], keys["open"])).status_code == 200
    for gw in gateways.values():
        async with gw.client() as c:
            assert _metric((await c.get("/metrics")).text, "tts_redis_up") == 1
            assert (await c.get("/ready")).status_code == 200
