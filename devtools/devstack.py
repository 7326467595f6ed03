"""`tts-gateway up`: the whole service on one machine, for a laptop or a first look.

Triton (XTTS + piper) on the model repository, the API on the embedded store (SQLite, in-process
limits and cache, unless DATABASE_URL / REDIS_URL say otherwise), a dev tenant and its API key.
XTTS serves XTTS_MODEL_PATH when set, else tiny random test weights built once (and flagged as
such by /health and /v1/engines).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from types import FrameType

from control_plane.services.console_signin import issue_code
from control_plane.settings import REPO_ROOT, Settings, get_settings
from devtools.dev_tenant import DEV_TENANT, secret_file
from devtools.dev_tenant import ensure_dev_tenant as ensure_tenant

log = logging.getLogger("tts_gateway.devstack")

TINY_ARTIFACT = REPO_ROOT / ".cache" / "models" / "xtts-tiny"


def ensure_xtts_artifact(settings: Settings) -> Path:
    """The artifact Triton serves: the configured export, or the tiny test weights (built on first use)."""
    if settings.xtts_model_path:
        path = Path(settings.xtts_model_path)
        if not (path / "manifest.json").is_file():
            raise SystemExit(f"XTTS_MODEL_PATH={path} is not an exported artifact (no manifest.json); "
                             "run `tts-gateway export xtts --checkpoint DIR --output DIR` first")
        return path
    if not (TINY_ARTIFACT / "manifest.json").is_file():
        from export.xtts import export_tiny

        print("building the tiny XTTS test model (random weights, once) ...", flush=True)
        export_tiny(TINY_ARTIFACT)
    return TINY_ARTIFACT


async def ensure_dev_tenant(settings: Settings) -> str:
    """Create the dev tenant once and keep its key in TTS_DATA_DIR/dev-api-key; return the key."""
    return await ensure_tenant(settings, DEV_TENANT, settings.tts_data_dir / "dev-api-key")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    # uvicorn restores the previous handlers and re-raises the signal after its own shutdown: with
    # this one in place SIGTERM unwinds through `finally` below, so Triton is stopped, not orphaned.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(prog="tts-gateway up", description=__doc__)
    parser.add_argument("--no-triton", action="store_true", help="use a Triton that is already running")
    args = parser.parse_args(argv)

    settings = get_settings()
    settings.tts_data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.tts_admin_token:
        token = secret_file(settings.tts_data_dir / "dev-admin-token", lambda: "adm_" + secrets.token_urlsafe(24))
        os.environ["TTS_ADMIN_TOKEN"] = token
    artifact = ensure_xtts_artifact(settings)
    os.environ["XTTS_MODEL_PATH"] = str(artifact)
    # The printed console link signs its first opener in (once, within ten minutes): dev stack only.
    os.environ.setdefault("CONSOLE_SIGNIN_CODE_FILE", str(settings.tts_data_dir / "console-signin.json"))
    get_settings.cache_clear()
    settings = get_settings()

    from control_plane.migrate import migrate

    asyncio.run(migrate(settings))
    api_key = asyncio.run(ensure_dev_tenant(settings))

    server = None
    if not args.no_triton:
        from devtools.triton_server import TritonServer

        server = TritonServer.from_settings(settings)
        print("starting Triton (xtts, xtts_condition, piper) ...", flush=True)
        server.start()
        server.wait_ready(timeout=300)
    try:
        test = " (tiny TEST weights: noise, not speech)" if artifact == TINY_ARTIFACT else ""
        base = f"http://localhost:{settings.tts_port}"
        # Issued once Triton is ready, so the ten minutes start when the link is printed.
        code_file = settings.console_signin_code_file  # set empty to turn the link off
        console = f"{base}/console/#signin={issue_code(Path(code_file), api_key)}" if code_file else f"{base}/console"
        print(
            "\nTTS Gateway is up.\n"
            f"  API          {base}   (docs: {base}/docs)\n"
            f"  console      {console}\n"
            "               (this link signs you in once, within 10 minutes; later, use the dev API key)\n"
            f"  Triton       {settings.triton_http_url} (gRPC {settings.triton_grpc_url})\n"
            f"  XTTS model   {artifact}{test}\n"
            f"  dev API key  {api_key}\n"
            f"  admin token  {os.environ['TTS_ADMIN_TOKEN']}\n\n"
            f"  curl -s {base}/v1/synthesize -H 'Authorization: Bearer {api_key}' "
            "-H 'Content-Type: application/json' "
            "-d '{\"text\": \"Hello from TTS Gateway.\"}' -o hello.wav\n",
            flush=True,
        )
        from control_plane.server import main as serve

        return serve([])
    finally:
        if settings.console_signin_code_file:  # an unused link dies with the stack that printed it
            Path(settings.console_signin_code_file).unlink(missing_ok=True)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
