"""`tts-gateway serve`: run the API with uvicorn on TTS_HOST:TTS_PORT."""

from __future__ import annotations

import argparse

from control_plane.settings import get_settings


def main(argv: list[str]) -> int:
    import uvicorn

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="tts-gateway serve", description="Run the TTS Gateway API.")
    parser.add_argument("--host", default=settings.tts_host)
    parser.add_argument("--port", type=int, default=settings.tts_port)
    parser.add_argument("--workers", type=int, default=settings.tts_workers)
    args = parser.parse_args(argv)
    uvicorn.run(
        "control_plane.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,  # the app installs its own JSON logging
        access_log=False,  # request logs come from the app's middleware, with request ids
        timeout_graceful_shutdown=30,
    )
    return 0
