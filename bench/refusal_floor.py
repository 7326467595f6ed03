"""The floor under a refusal, for `bench fairness`: a bare ASGI app that answers every request at once (503
`engine_overloaded` + Retry-After, a JSON body of a refusal's size; any GET 200) without reading it, run
by uvicorn with the options `tts-gateway serve` gives it. What a refusal costs above this is ours; what it
costs here is uvicorn's (and the kernel's): `python -m bench.refusal_floor --port P` runs it alone."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.stack import REPO_ROOT, Stack, _wait_http

REFUSAL = json.dumps({"error": {"code": "engine_overloaded", "message": "the piper engine is at capacity: a new "
                      "request of yours would wait about 9.9 s for its first audio (this server's bound is 0.001 "
                      "s); retry in 10 s", "request_id": "0" * 32, "retry_after_s": 10}}).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    health = scope["method"] == "GET"  # /health, and the key's lookup a burst's connections make first
    body = b'{"status":"ok"}' if health else REFUSAL
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if not health:
        headers.append((b"retry-after", b"10"))
    await send({"type": "http.response.start", "status": 200 if health else 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str]) -> int:
    import uvicorn

    from control_plane.server import connection_options
    from control_plane.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m bench.refusal_floor")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5, **connection_options(get_settings()))
    return 0


@contextlib.contextmanager
def bare_server(stack: Stack) -> Iterator[Stack]:
    """The bare app on a port of its own, as a Stack (base URL and pid) the refusal measurements take."""
    from devtools.triton_server import free_ports

    port = free_ports(1)[0]
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        log_path = Path(tmp) / "bare.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "bench.refusal_floor", "--port", str(port)],
                                    env={**os.environ, **(stack.api_env or {})}, cwd=REPO_ROOT, stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_http(f"{base}/health", 60, proc, log_path)
            yield Stack(base=base, admin="", grpc_url=stack.grpc_url, api_pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
