"""The FastAPI application: `create_app(settings)`.

The lifespan builds one AppState (store, limits, usage, metrics, cache, Triton client, services) on
`app.state.services` and closes it on shutdown after draining the streams in flight. The request
middleware gives every request an id (X-Request-ID in and out, and in every log line), adds the
rate-limit headers, counts the request in `tts_http_requests_total` and writes one JSON log line
per request — method, route, status, latency; never bodies or query strings (a WebSocket client may
put its key in the query).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane import __version__, stage_timing
from control_plane.api import ROUTERS
from control_plane.api.admission_gate import AdmissionGate
from control_plane.errors import StreamAborted, document_errors, install_error_handlers
from control_plane.logging import configure_logging, log_fields, request_id_var, writing_in_background
from control_plane.loop_monitor import loop_lag_probe
from control_plane.settings import Settings, get_settings
from control_plane.state import build_state

log = logging.getLogger("tts_gateway.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = value.decode("latin-1").strip()
            if _REQUEST_ID.match(given):
                return given
    # 128 random bits as 32 hex digits (like uuid4().hex), from the process's PRNG: an id, not a secret, and no
    # system call (os.urandom's can take milliseconds in a VM); `random` reseeds in a forked child.
    return f"{random.getrandbits(128):032x}"


class RequestMiddleware:
    def __init__(self, app: ASGIApp, stage_timing: bool = False) -> None:
        self.app = app
        self.stage_timing = stage_timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        token = request_id_var.set(rid)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(token)
            return
        started = time.perf_counter()
        status = 500
        clock = stage_timing.start() if self.stage_timing else None
        metrics = _metrics(scope)

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
                    metrics.request_latency.labels(scope["method"], _route(scope), str(status)).observe(
                        time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except* StreamAborted:
            pass  # logged where it happened; returning unfinished makes the server drop the connection
        finally:
            route = _route(scope)
            if metrics is not None:
                metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            if route not in ("/health", "/ready", "/metrics"):
                latency_ms = round((time.perf_counter() - started) * 1000, 1)
                log_fields(log, logging.INFO, "request", {
                    "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                    "tenant_id": state.get("tenant_id"), "latency_ms": latency_ms})
            if clock is not None:
                stage_timing.stop(*clock)
            request_id_var.reset(token)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _metrics(scope: Scope):  # noqa: ANN202
    services = getattr(scope["app"].state, "services", None) if "app" in scope else None
    return getattr(services, "metrics", None)


_OTEL_PLACEHOLDERS = {"ProxyTracerProvider", "_ProxyMeterProvider", "ProxyLoggerProvider"}


def _telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry, per signal, on where a provider for it is set when the app is made (by the
    SDK in code, `opentelemetry-instrument`, or OTEL_PYTHON_*_PROVIDER). Left on with none set, FastAPI asks
    the OpenTelemetry API for each provider on every request: a few microseconds that every refusal paid."""
    from opentelemetry import _logs, metrics, trace

    def configured(provider: object) -> bool:
        return type(provider).__name__ not in _OTEL_PLACEHOLDERS  # the API's stand-ins until one is set

    return {"tracing": configured(trace.get_tracer_provider()), "metrics": configured(metrics.get_meter_provider()),
            "logs": configured(_logs.get_logger_provider())}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_state(settings)
        app.state.services = services
        log.info("started", extra={"version": __version__, "store": services.store.backend,
                                   "redis": services.redis is not None})
        try:
            with writing_in_background():  # log lines off the event loop while serving (control_plane/logging.py)
                async with loop_lag_probe(services.metrics):
                    yield
        finally:
            drained = await services.streams.drain(settings.shutdown_grace_s)
            if not drained:
                log.warning("shutting down with streams still open", extra={"active": services.streams.active})
            await services.close()

    app = FastAPI(
        title="TTS Gateway", version=__version__, lifespan=lifespan, telemetry=_telemetry(),
        description="Multi-tenant text-to-speech: XTTS-v2 voice cloning and the bundled Piper voice, "
                    "served by Triton. Authenticate with `Authorization: Bearer <api key>`.",
    )
    install_error_handlers(app)
    document_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    from control_plane.api.console import router as console_router  # the web console (/console)
    app.include_router(console_router)
    app.add_middleware(AdmissionGate)  # inside the request middleware: a refusal keeps its id, metrics and log line
    app.add_middleware(RequestMiddleware, stage_timing=settings.tts_stage_timing)
    return app
