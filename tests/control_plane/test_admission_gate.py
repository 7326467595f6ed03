"""The admission gate (api/admission_gate.py) in the real app: a tenant over its share on every engine is refused
before routing with the answer the synthesis flow gives on that surface, counted like it (in batches a scrape
sees at once) and logged in one line per tenant and route; anything the gate cannot decide passes through to
the flow.

The app runs in-process on the embedded store; the engine's load is set in the app's own Admission (a fake clock,
the rate measured through its accounting, ten seconds of the flooding tenant's work in flight), so both the gate
and the flow refuse without an engine. Whether the gate answered is told by what only the flow does: it looks the
key up (`authenticate`) and counts the request against the rate-limit windows (X-RateLimit-* headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from admission_helpers import Clock, measured
from conftest import admin_headers, settings_for, start_api

from control_plane.api import gate_refusals
from control_plane.services.voices import DEFAULT_VOICE_ALIAS

SURFACES: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    # name: (path, how its clients send the key ("KEY" is replaced), body)
    "ours": ("/v1/synthesize", {"Authorization": "Bearer KEY"}, {"text": "Hello there.", "format": "wav"}),
    "ours stream": ("/v1/synthesize/stream", {"Authorization": "Bearer KEY"}, {"text": "Hello.", "format": "pcm"}),
    "openai": ("/v1/audio/speech", {"Authorization": "Bearer KEY"}, {"model": "tts-1", "voice": "alloy",
                                                                      "input": "Hello."}),
    "elevenlabs": (f"/v1/text-to-speech/{DEFAULT_VOICE_ALIAS}", {"xi-api-key": "KEY"}, {"text": "Hello."}),
    "elevenlabs stream": (f"/v1/text-to-speech/{DEFAULT_VOICE_ALIAS}/stream/with-timestamps", {"xi-api-key": "KEY"},
                          {"text": "Hello."}),
    "cartesia": ("/tts/bytes", {"X-API-Key": "KEY", "Cartesia-Version": "2025-04-16"},
                 {"model_id": "sonic-2", "transcript": "Hello.", "voice": {"mode": "id", "id": "a0e99841"},
                  "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}}),
    "cartesia sse": ("/tts/sse", {"X-API-Key": "KEY", "Cartesia-Version": "2025-04-16"},
                     {"model_id": "sonic-2", "transcript": "Hello.", "voice": {"mode": "id", "id": "a0e99841"},
                      "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}}),
    "deepgram": ("/v1/speak", {"Authorization": "Token KEY"}, {"text": "Hello."}),
}
NUMBER = re.compile(r"\d+(\.\d+)?")
# Differ between any two refusals: the request's id, the jittered Retry-After (and so the body's length).
VARYING = {"x-request-id", "dg-request-id", "retry-after", "content-length", "dg-error"}


class Gateway:
    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client
        self.services = app.state.services
        self.authenticated = 0
        authenticate = self.services.tenants.authenticate

        async def counted(key: str) -> Any:
            self.authenticated += 1
            return await authenticate(key)

        self.services.tenants.authenticate = counted

    async def tenant(self) -> tuple[str, str]:
        r = await self.client.post("/admin/v1/tenants", headers=admin_headers(), json={"name": _name()})
        assert r.status_code == 201, r.text
        return r.json()["tenant_id"], r.json()["api_key"]

    async def known(self) -> tuple[str, str]:
        """A tenant whose key this replica has looked up (its auth cache holds it)."""
        tenant_id, key = await self.tenant()
        assert (await self.client.get("/v1/tenant/config", headers={"Authorization": f"Bearer {key}"})).status_code \
            == 200
        return tenant_id, key

    async def post(self, surface: str, key: str) -> tuple[httpx.Response, bool]:
        """The surface's request; and whether the gate answered it (the flow never looked the key up)."""
        path, headers, body = SURFACES[surface]
        before = self.authenticated
        r = await self.client.post(path, json=body, headers={k: v.replace("KEY", key) for k, v in headers.items()})
        return r, self.authenticated == before


_names = iter(range(10**6))


def _name() -> str:
    return f"gate-{next(_names)}"


@contextlib.asynccontextmanager
async def _gateway(tmp_path) -> AsyncIterator[Gateway]:
    """The app on a fresh embedded store, its Piper rate measured on a fake clock; shut down on leaving."""
    settings = settings_for({"tts_data_dir": tmp_path, "database_url": "", "redis_url": ""},
                            admission_max_wait_s=0.5, admission_min_inflight=1, auth_cache_ttl_s=60.0)
    app, lifespan, client = await start_api(settings)
    admission = app.state.services.admission
    admission.clock = clock = Clock()
    measured(admission, clock, 100.0)  # Piper completes 100 characters per second
    try:
        yield Gateway(app, client)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def gw(tmp_path) -> AsyncIterator[Gateway]:
    async with _gateway(tmp_path) as gateway:
        yield gateway


def _flood(gw: Gateway, tenant_id: str) -> None:
    gw.services.admission.started("piper", f"{tenant_id}-flood", 1000, tenant_id)  # ten seconds of its own work


def _same_answer(gate: httpx.Response, flow: httpx.Response) -> None:
    assert gate.status_code == flow.status_code == 503
    flow_headers = {k for k in flow.headers if not k.startswith("x-ratelimit")}
    assert set(gate.headers) == flow_headers
    for name in flow_headers - VARYING:
        assert gate.headers[name] == flow.headers[name], name
    for name in flow_headers & {"dg-error"}:  # the message, with its own Retry-After in it
        assert NUMBER.sub("N", gate.headers[name]) == NUMBER.sub("N", flow.headers[name])
    assert int(gate.headers["Retry-After"]) >= 1 and int(flow.headers["Retry-After"]) >= 1

    def masked(body: Any) -> Any:
        if isinstance(body, dict):
            return {k: "ID" if k == "request_id" else masked(v) for k, v in body.items()}
        return NUMBER.sub("N", body) if isinstance(body, str) else "N" if isinstance(body, int) else body

    assert masked(gate.json()) == masked(flow.json())
    assert "engine_overloaded" in gate.text and "piper engine is at capacity" in gate.text


@pytest.mark.parametrize("surface", list(SURFACES))
async def test_refused_at_the_gate_as_the_flow_refuses(gw: Gateway, surface: str) -> None:
    tenant_id, key = await gw.known()
    _flood(gw, tenant_id)
    gate, by_gate = await gw.post(surface, key)
    assert by_gate, gate.text
    assert not any(h.startswith("x-ratelimit") for h in gate.headers)  # not counted against its windows

    gw.services.settings.admission_gate = False
    flow, by_gate = await gw.post(surface, key)
    assert not by_gate
    assert "x-ratelimit-limit" in flow.headers
    _same_answer(gate, flow)


async def test_what_the_gate_cannot_decide_passes_through(gw: Gateway) -> None:
    flood_id, flood_key = await gw.known()
    _flood(gw, flood_id)
    # a key this replica has not looked up yet: the flow refuses it (the gate will, now that it is known)
    unknown_id, unknown_key = await gw.tenant()
    _flood(gw, unknown_id)
    r, by_gate = await gw.post("ours", unknown_key)
    assert not by_gate and r.status_code == 503 and "x-ratelimit-limit" in r.headers
    r, by_gate = await gw.post("ours", unknown_key)
    assert by_gate and r.status_code == 503
    # an invalid key: the flow's 401
    r, by_gate = await gw.post("ours", "tts_" + "x" * 43)
    assert not by_gate and r.status_code == 401
    # a tenant within its share: to the flow, which admits it (and then finds no engine here)
    _, quiet_key = await gw.known()
    r, by_gate = await gw.post("ours", quiet_key)
    assert not by_gate and r.json()["error"]["code"] != "engine_overloaded"
    # another route, and a GET of a synthesis path
    r = await gw.client.post("/v1/ssml/validate", json={"ssml": "<speak>Hi.</speak>"},
                             headers={"Authorization": f"Bearer {flood_key}"})
    assert r.status_code == 200, r.text
    r = await gw.client.get("/v1/synthesize", headers={"Authorization": f"Bearer {flood_key}"})
    assert r.status_code == 405
    # a tenant this replica recently served from the cache: its request may be a hit, served under overload
    gw.services.flow._cache_user(flood_id)
    r, by_gate = await gw.post("ours", flood_key)
    assert not by_gate and r.status_code == 503  # the flow refuses what is not cached
    # the gate turned off (ADMISSION_GATE=false)
    gw.services.settings.admission_gate = False
    r, by_gate = await gw.post("ours", flood_key)
    assert not by_gate


async def test_a_revoked_key_is_not_served_from_the_cache_beyond_the_bound(gw: Gateway) -> None:
    tenant_id, key = await gw.known()
    _flood(gw, tenant_id)
    assert (await gw.post("ours", key))[1]
    # revoked through this replica: at once
    r = await gw.client.post(f"/admin/v1/tenants/{tenant_id}/revoke", headers=admin_headers())
    assert r.status_code == 200
    r, by_gate = await gw.post("ours", key)
    assert not by_gate and r.status_code == 401

    # suspended elsewhere (the store changed, this replica's cache not cleared): within AUTH_CACHE_TTL_S only
    tenant_id, key = await gw.known()
    _flood(gw, tenant_id)
    await gw.services.store.tenants.update(tenant_id, status="suspended")
    assert (await gw.post("ours", key))[1]  # the cached lookup, as the flow's own would be
    tenants = gw.services.tenants
    for key_hash, lookup in list(tenants._auth_cache.items()):  # the bound has passed
        tenants._auth_cache[key_hash] = lookup._replace(read_at=lookup.read_at - tenants._auth_ttl_s)
    r, by_gate = await gw.post("ours", key)
    assert not by_gate and r.status_code == 401


async def _sample(gw: Gateway, name: str, **labels: str) -> float:
    """A series' value as a scrape sees it (the scrape writes out the gate's kept-back counts first)."""
    assert (await gw.client.get("/metrics")).status_code == 200
    return gw.services.metrics.registry.get_sample_value(name, labels) or 0.0


async def _counts(gw: Gateway, tenant_id: str, tier: str) -> dict[str, float]:
    route = "/v1/synthesize/stream"
    return {"http": await _sample(gw, "tts_http_requests_total", method="POST", route=route, status="503"),
            "latency": await _sample(gw, "tts_http_request_duration_seconds_count", method="POST", route=route,
                                     status="503"),
            "shed": await _sample(gw, "tts_admission_decisions_total", engine="piper", outcome="shed"),
            "errors": await _sample(gw, "tts_errors_total", code="engine_overloaded"),
            "tenant": await _sample(gw, "tts_tenant_admission_decisions_total", engine="piper", tier=tier,
                                    tenant=gw.services.metrics.tenant_label(tenant_id) or "none", outcome="shed"),
            "wait": await _sample(gw, "tts_tier_admission_expected_wait_seconds_count", engine="piper", tier=tier,
                                  outcome="shed")}


async def test_a_gate_refusal_moves_every_count_the_flow_refusal_does(gw: Gateway) -> None:
    tenant_id, key = await gw.known()
    tier = gw.services.tenants.cached(key).tier
    _flood(gw, tenant_id)
    before = await _counts(gw, tenant_id, tier)
    for _ in range(2):
        gate, by_gate = await gw.post("ours stream", key)
        assert by_gate and gate.status_code == 503
    after_gate = await _counts(gw, tenant_id, tier)  # the scrape sees both at once, before any timer
    gw.services.settings.admission_gate = False
    for _ in range(2):
        flow, by_gate = await gw.post("ours stream", key)
        assert not by_gate and flow.status_code == 503
    after_flow = await _counts(gw, tenant_id, tier)
    assert {k: after_gate[k] - before[k] for k in before} == {k: after_flow[k] - after_gate[k] for k in before}
    assert after_gate["http"] - before["http"] == 2 and after_gate["tenant"] - before["tenant"] == 2


async def test_gate_refusals_are_logged_in_one_line_per_tenant_and_route(gw: Gateway, caplog, monkeypatch) -> None:
    monkeypatch.setattr(gate_refusals, "FLUSH_S", 0.05)  # the timer's flush, without a scrape
    tenant_id, key = await gw.known()
    _flood(gw, tenant_id)
    caplog.set_level(logging.INFO, logger="tts_gateway.http")
    ids = []
    for _ in range(3):
        gate, by_gate = await gw.post("ours stream", key)
        assert by_gate and gate.status_code == 503
        ids.append(gate.headers["X-Request-ID"])
    assert len(set(ids)) == 3 and gate.json()["error"]["request_id"] == ids[2]

    def refused() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == "refused"]

    for _ in range(1000):  # the flush is due 50 ms after the first refusal: waited for, up to 20 s
        if refused():
            break
        await asyncio.sleep(0.02)
    lines = refused()
    assert len(lines) == 1
    line = lines[0]
    assert (line.route, line.status, line.code, line.tenant_id, line.engine, line.count, line.method) == \
        ("/v1/synthesize/stream", 503, "engine_overloaded", tenant_id, "piper", 3, "POST")
    assert line.first_request_id == ids[0] and 0 <= line.latency_ms_p50 <= line.latency_ms_max
    assert not [r for r in caplog.records if r.getMessage() == "request" and r.status == 503]  # no line each
    gw.services.gate_refusals.flush()  # nothing left: no second line
    assert len(refused()) == 1


async def test_refusals_noted_before_shutdown_are_logged_by_it(tmp_path, caplog, monkeypatch) -> None:
    monkeypatch.setattr(gate_refusals, "FLUSH_S", 3600.0)  # only the shutdown can flush
    async with _gateway(tmp_path) as gw:
        tenant_id, key = await gw.known()
        _flood(gw, tenant_id)
        caplog.set_level(logging.INFO, logger="tts_gateway.http")
        gate, by_gate = await gw.post("ours", key)
        assert by_gate and gate.status_code == 503
        assert not [r for r in caplog.records if r.getMessage() == "refused"]
    assert [r.count for r in caplog.records if r.getMessage() == "refused"] == [1]
