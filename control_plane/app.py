"""The FastAPI application: `create_app(settings)`.

The lifespan builds one AppState (store, limits, usage, metrics, cache, Triton client, services) on
`app.state.services` and closes it on shutdown after draining the streams in flight. Every request passes
the admission gate (api/admission_gate.py: under overload it answers a refusal itself, outermost, before any
other work), then the request middleware (control_plane/request_middleware.py: the request's id, metrics
and one log line).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from control_plane import __version__
from control_plane.api import ROUTERS
from control_plane.api.admission_gate import AdmissionGate
from control_plane.errors import document_errors, install_error_handlers
from control_plane.logging import configure_logging, writing_in_background
from control_plane.loop_monitor import loop_lag_probe
from control_plane.request_middleware import RequestMiddleware
from control_plane.settings import Settings, get_settings
from control_plane.state import build_state

log = logging.getLogger("tts_gateway.http")
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


def create_app(settings: Settings | None = None, *, freeze_after_startup: bool = False) -> FastAPI:
    """The app. `freeze_after_startup`: the serving process's own app (`tts-gateway serve`), the only one in its
    process; an app among others (tests, benchmarks in process) leaves the collector alone."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_state(settings)
        app.state.services = services
        if freeze_after_startup:
            # What startup made lives as long as the process: out of the collector's sight, a full collection
            # no longer walks it (~150k objects: 50-125 ms with the event loop stopped, a burst's whole budget).
            gc.collect()
            gc.freeze()
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
    app.add_middleware(RequestMiddleware, stage_timing=settings.tts_stage_timing)
    app.add_middleware(AdmissionGate)  # outermost (added last): a refusal pays for nothing it does not need
    return app
