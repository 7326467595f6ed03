"""Where a refusal's CPU goes, in process: `python -m bench.refusal_profile [--requests N] [--top K] 2>/dev/null`
(the request log lines go to stderr, as the gateway's do).

The app (embedded store, no engine: the flooding tenant's work is set in its own Admission) is called as
uvicorn calls it, an ASGI scope and a body, with no server or client around it: the time per request of a
refusal decided at the admission gate, of one decided in the synthesis flow (ADMISSION_GATE off), and of a 404,
then a cProfile of the flow's refusals (the functions that take the most time, cumulative). What uvicorn adds
on top (parsing, the socket) is in `bench fairness`'s paired figures (`bench/refusal_floor.py`)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from typing import Any


async def _call(app: Any, path: str, key: str, body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"gateway"), (b"authorization", f"Bearer {key}".encode()),
                         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8790)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a client that stays connected
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _per_request_ms(app: Any, path: str, key: str, n: int, expect: int) -> float:
    body = json.dumps({"text": "Hello there, one more question.", "format": "pcm"}).encode()
    for _ in range(20):
        status = await _call(app, path, key, body)
        assert status == expect, status
    start = time.process_time()
    for _ in range(n):
        await _call(app, path, key, body)
    return (time.process_time() - start) * 1000 / n


async def run(requests: int, top: int) -> str:
    import httpx

    from bench.fairness_clients import LIMITS
    from control_plane.app import create_app
    from control_plane.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(tts_data_dir=tmp, database_url="", redis_url="", tts_admin_token="profile",
                            log_level="INFO", admission_max_wait_s=0.001, admission_min_inflight=1,
                            triton_grpc_url="127.0.0.1:9", triton_http_url="http://127.0.0.1:9")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as client:
                made = await client.post("/admin/v1/tenants", json={"name": "flood", **LIMITS},
                                         headers={"Authorization": "Bearer profile"})
                tenant_id, key = made.json()["tenant_id"], made.json()["api_key"]
            admission = app.state.services.admission
            for _ in range(20):  # the engine's rate is measured, then ten seconds of the tenant's work in flight
                admission.started("piper", "warm", 50)
                admission.finished("piper", 50, completed=True)
            admission.loads["piper"].rate = 100.0
            admission.started("piper", "flood", 1000, tenant_id)
            gate = await _per_request_ms(app, "/v1/synthesize/stream", key, requests, 503)
            settings.admission_gate = False
            flow = await _per_request_ms(app, "/v1/synthesize/stream", key, requests, 503)
            unrouted = await _per_request_ms(app, "/v1/unrouted", key, requests, 404)
            profiles = {}
            for name, on in (("in the flow", False), ("at the gate", True)):
                settings.admission_gate = on
                profiles[name] = profile = cProfile.Profile()
                profile.enable()
                await _per_request_ms(app, "/v1/synthesize/stream", key, requests, 503)
                profile.disable()
    report = (f"CPU per request, in process, {requests} requests each (ms): refused at the gate {gate:.3f}; "
              f"refused in the flow {flow:.3f}; 404 {unrouted:.3f}\n")
    for name, profile in profiles.items():
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
        report += f"\nRefused {name}, cumulative:\n" + out.getvalue()
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refusal_profile")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.requests, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
