"""Every HTTP request's id, metrics and one log line.

The request middleware gives every request an id (X-Request-ID in and out, and in every log line), adds the
rate-limit headers, counts the request in `tts_http_requests_total` and its time to the response headers in
`tts_http_request_duration_seconds`, and writes one JSON log line per request: method, route, status,
latency; never bodies or query strings (a WebSocket client may put its key in the query). The admission
gate (api/admission_gate.py), outside it, answers a refusal itself with an id made the same way
(`request_id_for`), counted in the same metrics in batches, and logged one line per tenant and route for up
to a second of refusals (api/gate_refusals.py).
"""

from __future__ import annotations

import logging
import random
import re
import time
from contextvars import Token
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane import stage_timing
from control_plane.errors import StreamAborted
from control_plane.logging import log_fields, request_id_var

log = logging.getLogger("tts_gateway.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
UNLOGGED_ROUTES = frozenset(("/health", "/ready", "/metrics"))  # probes and scrapes: counted, not logged


def request_id_for(scope: Scope) -> str:
    """The client's X-Request-ID where it is a sane id, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = value.decode("latin-1").strip()
            if _REQUEST_ID.match(given):
                return given
    # 128 random bits as 32 hex digits (like uuid4().hex), from the process's PRNG: an id, not a secret, and no
    # system call (os.urandom's can take milliseconds in a VM); `random` reseeds in a forked child.
    return f"{random.getrandbits(128):032x}"


def begin_request(scope: Scope) -> tuple[str, Token[str]]:
    """Give the request its id: in `scope["state"]` (request.state.request_id) and in the log context."""
    rid = request_id_for(scope)
    scope.setdefault("state", {})["request_id"] = rid
    return rid, request_id_var.set(rid)


def end_request(scope: Scope, metrics: Any, status: int, started: float) -> None:
    """Count the finished request and write its log line (its id still in the log context)."""
    route = route_of(scope)
    if metrics is not None:
        metrics.http_requests.labels(scope["method"], route, str(status)).inc()
    if route not in UNLOGGED_ROUTES:
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        log_fields(log, logging.INFO, "request", {
            "method": scope["method"], "path": scope["path"], "route": route, "status": status,
            "tenant_id": scope["state"].get("tenant_id"), "latency_ms": latency_ms})


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def metrics_of(scope: Scope) -> Any:
    services = getattr(scope["app"].state, "services", None) if "app" in scope else None
    return getattr(services, "metrics", None)


class RequestMiddleware:
    def __init__(self, app: ASGIApp, stage_timing: bool = False) -> None:
        self.app = app
        self.stage_timing = stage_timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid, token = begin_request(scope)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(token)
            return
        started = time.perf_counter()
        status = 500
        clock = stage_timing.start() if self.stage_timing else None
        metrics = metrics_of(scope)
        state = scope["state"]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                for key, value in (state.get("rate_limit_headers") or {}).items():
                    if key not in headers:
                        headers[key] = value
                if metrics is not None:
                    metrics.request_latency.labels(scope["method"], route_of(scope), str(status)).observe(
                        time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except* StreamAborted:
            pass  # logged where it happened; returning unfinished makes the server drop the connection
        finally:
            end_request(scope, metrics, status, started)
            if clock is not None:
                stage_timing.stop(*clock)
            request_id_var.reset(token)
