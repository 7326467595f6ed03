"""Postgres stopped and started again under a running gateway: requests fail fast with 503
`store_unavailable` (never a 500, never a hang) and the connection pool recovers by itself."""

from __future__ import annotations

import time

from conftest import make_pg_database
from fault_helpers import eventually
from gateway_helpers import run_gateway


async def test_postgres_restart_fails_fast_and_the_pool_recovers(postgres_server, triton_piper, tmp_path):
    db = await make_pg_database(postgres_server)
    with run_gateway(tmp_path, triton_piper, database_url=db.app_url) as gw:
        _, key = await gw.tenant()
        async with gw.client(key, timeout=30) as c:
            assert (await c.get("/v1/voices")).status_code == 200
            assert (await c.post("/v1/synthesize", json={"text": "Before.", "format": "wav"})).status_code == 200

            postgres_server.stop()
            try:
                for path in ("/v1/voices", "/v1/tenant/usage", "/v1/tenant/config"):
                    began = time.monotonic()
                    r = await c.get(path)
                    assert time.monotonic() - began < 10, path
                    assert r.status_code == 503, (path, r.status_code, r.text)
                    assert r.json()["error"]["code"] == "store_unavailable" and r.headers["retry-after"].isdigit()
                async with gw.client() as anonymous:
                    ready = await anonymous.get("/ready")
                assert ready.status_code == 503 and any("store" in x for x in ready.json()["reasons"])
            finally:
                postgres_server.start()

            async def recovered() -> bool:
                return (await c.get("/v1/voices")).status_code == 200

            await eventually(recovered, within=60)
            r = await c.post("/v1/synthesize", json={"text": "After.", "format": "wav"})
            assert r.status_code == 200 and r.content[:4] == b"RIFF"
