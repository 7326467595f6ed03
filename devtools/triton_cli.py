"""`tts-gateway triton`: start Triton on the model repository, wait until it is ready, serve until a signal."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from devtools.triton_install import ALL_MODELS, TritonLaunchError
from devtools.triton_server import TritonServer

if TYPE_CHECKING:
    from control_plane.settings import Settings


def _parse_models(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one model name")
    return names


def _build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tts-gateway triton",
        description="Start Triton on the model repository, wait until it is ready, and serve until SIGINT/SIGTERM.",
    )
    parser.add_argument("--http-port", type=int, default=settings.triton_http_port)
    parser.add_argument("--grpc-port", type=int, default=settings.triton_grpc_port)
    parser.add_argument("--metrics-port", type=int, default=settings.triton_metrics_port)
    parser.add_argument("--model-repository", type=Path, default=Path(settings.triton_model_repository))
    parser.add_argument("--models", type=_parse_models, default=None,
                        help=f"comma-separated subset to load (default: all of {','.join(ALL_MODELS)})")
    parser.add_argument("--log-file", type=Path, default=None, help="server log (default: TTS_DATA_DIR/triton.log)")
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for readiness")
    return parser


def _needs_xtts(models: Iterable[str] | None) -> bool:
    return models is None or any(name.startswith("xtts") for name in models)


def main(argv: list[str] | None = None) -> int:
    from control_plane.settings import get_settings

    settings = get_settings()
    args = _build_parser(settings).parse_args(argv)
    if _needs_xtts(args.models) and not settings.xtts_model_path:
        print("tts-gateway triton: XTTS_MODEL_PATH is not set; the xtts models need an exported artifact "
              "(tts-gateway export xtts ...), or pass --models piper", file=sys.stderr)
        return 2
    server = TritonServer.from_settings(
        settings,
        models=args.models,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        model_repository=args.model_repository,
        **({"log_path": args.log_file} if args.log_file else {}),
    )
    class _Stop(Exception):
        pass

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop  # unwinds whatever the launcher is doing (waiting or serving) into the finally below

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
        print(f"starting tritonserver (log: {server.log_path}) ...", flush=True)
        server.wait_ready(timeout=args.ready_timeout)
        print(
            f"Triton is ready: models {','.join(args.models or ALL_MODELS)}\n"
            f"  HTTP     {server.http_url}\n  gRPC     {server.grpc_url}\n  metrics  {server.metrics_url}",
            flush=True,
        )
        while True:
            if server.process is not None and server.process.poll() is not None:
                print(f"tritonserver exited with code {server.process.returncode}; log tail:\n{server.log_tail()}",
                      file=sys.stderr)
                return 1
            time.sleep(0.5)
    except _Stop:
        print("stopping tritonserver ...", flush=True)
        return 0
    except TritonLaunchError as error:
        print(f"tts-gateway triton: {error}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
