"""`tts-gateway serve`: run the API with uvicorn on TTS_HOST:TTS_PORT.

SIGTERM (a Kubernetes rolling update) drains before it closes anything: the replica turns not-ready
(`/ready` 503) and refuses new streams with 503 + Retry-After while the streams in flight finish,
for up to SHUTDOWN_GRACE_S; then uvicorn stops accepting connections and shuts down as usual. A
second SIGTERM, or SIGINT (Ctrl-C), skips the wait.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from types import FrameType
from typing import Any

from control_plane.settings import get_settings

log = logging.getLogger(__name__)


def _draining_server(config: Any, app: Any, grace_s: float) -> Any:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn.Server whose first SIGTERM drains the app's streams before the usual shutdown."""

        _drain_task: asyncio.Future[None] | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            services = getattr(app.state, "services", None)
            if sig != signal.SIGTERM or self._drain_task is not None or services is None:
                super().handle_exit(sig, frame)
                return
            loop = asyncio.get_event_loop()  # the running loop: signal handlers run on its thread
            self._drain_task = asyncio.Future(loop=loop)  # marks the drain as begun until the task exists
            loop.call_soon_threadsafe(self._begin_drain, loop, services)

        def _begin_drain(self, loop: asyncio.AbstractEventLoop, services: Any) -> None:
            self._drain_task = loop.create_task(self._drain(services))

        async def _drain(self, services: Any) -> None:
            log.info("SIGTERM: draining", extra={"active": services.streams.active, "grace_s": grace_s})
            drained = await services.streams.drain(grace_s)
            if not drained:
                log.warning("grace period over with streams still open", extra={"active": services.streams.active})
            self.should_exit = True

    return DrainingServer(config)


def connection_options(settings: Any) -> dict[str, Any]:
    """uvicorn's HTTP keep-alive, WebSocket keepalive and size limit, from Settings."""
    return {"ws_ping_interval": settings.ws_ping_interval_s, "ws_ping_timeout": settings.ws_ping_timeout_s,
            "ws_max_size": settings.ws_max_message_bytes,
            "timeout_keep_alive": settings.http_keepalive_timeout_s}


def serving_app() -> Any:
    """The app each uvicorn worker makes (`--workers` > 1): its process's only one."""
    from control_plane.app import create_app

    return create_app(freeze_after_startup=True)


def main(argv: list[str]) -> int:
    import uvicorn

    from control_plane.app import create_app

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="tts-gateway serve", description="Run the TTS Gateway API.")
    parser.add_argument("--host", default=settings.tts_host)
    parser.add_argument("--port", type=int, default=settings.tts_port)
    parser.add_argument("--workers", type=int, default=settings.tts_workers)
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": None,  # the app installs its own JSON logging
        "access_log": False,  # request logs come from the app's middleware, with request ids
        "timeout_graceful_shutdown": 5,  # streams have drained by then (SIGTERM waits for them first)
        **connection_options(settings),
    }
    if args.workers > 1:  # uvicorn's supervisor owns the signals: each worker drains in its lifespan shutdown
        uvicorn.run("control_plane.server:serving_app", factory=True, workers=args.workers,
                    **{**options, "timeout_graceful_shutdown": int(settings.shutdown_grace_s)})
        return 0
    app = create_app(settings, freeze_after_startup=True)
    _draining_server(uvicorn.Config(app, **options), app, settings.shutdown_grace_s).run()
    return 0
