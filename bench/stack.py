"""Triton and the control plane as real processes on free ports, for the stages that go through the API."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.errors import StageUnavailable, start_triton
from bench.results import REPO_ROOT


@dataclass
class Stack:
    base: str  # the API's URL
    admin: str  # its admin token
    grpc_url: str  # Triton's
    api_pid: int
    api_env: dict[str, str] | None = None  # what the API was started with (another API can share Triton)
    http_url: str = ""  # Triton's HTTP endpoint (model statistics)
    metrics_url: str = ""  # Triton's Prometheus endpoint
    api_log: Path | None = None  # the control plane's log file (JSON lines)


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StageUnavailable(f"the control plane exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise StageUnavailable(f"the control plane did not answer {url} within {timeout:.0f} s")


@contextlib.contextmanager
def running_stack(name: str, models: list[str], threads: str, triton_env: dict[str, str] | None = None,
                  api_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Triton serving `models` and `tts-gateway serve` on the embedded store; both stopped on exit."""
    from devtools.triton_server import TritonServer, free_ports

    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        http, grpc, metrics, api_port = free_ports(4)
        server = TritonServer(http_port=http, grpc_port=grpc, metrics_port=metrics, models=models,
                              env={"OMP_NUM_THREADS": threads, **(triton_env or {})},
                              log_path=Path(tmp) / "triton.log")
        start_triton(server, timeout=300)
        admin = "adm_" + secrets.token_urlsafe(16)
        env = {
            "TTS_ADMIN_TOKEN": admin, "DATABASE_URL": "", "REDIS_URL": "", "LOG_LEVEL": "WARNING",
            "TRITON_GRPC_URL": server.grpc_url, "TRITON_HTTP_URL": server.http_url,
            "TRITON_METRICS_URL": server.metrics_url, "OMP_NUM_THREADS": threads, **(api_env or {}),
        }
        try:
            with _serve_api(Path(tmp), api_port, env) as (base, pid, log_path):
                yield Stack(base=base, admin=admin, grpc_url=server.grpc_url, api_pid=pid, api_env=env,
                            http_url=server.http_url, metrics_url=server.metrics_url, api_log=log_path)
        finally:
            server.stop()


@contextlib.contextmanager
def another_api(stack: Stack, name: str, api_env: dict[str, str], checkout: Path | None = None) -> Iterator[Stack]:
    """A second `tts-gateway serve` on the same Triton (its own embedded store), started with the first
    one's settings overridden by `api_env`: two configurations compared in one run. `checkout`: run the
    control plane of another checkout of this repository (e.g. `git worktree add /tmp/before COMMIT`), to
    compare two versions of the code in one run."""
    from devtools.triton_server import free_ports

    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        env = {**(stack.api_env or {}), **api_env}
        with _serve_api(Path(tmp), free_ports(1)[0], env, checkout) as (base, pid, log_path):
            yield Stack(base=base, admin=env["TTS_ADMIN_TOKEN"], grpc_url=stack.grpc_url, api_pid=pid, api_env=env,
                        http_url=stack.http_url, metrics_url=stack.metrics_url, api_log=log_path)


@contextlib.contextmanager
def _serve_api(tmp: Path, port: int, env: dict[str, str],
               checkout: Path | None = None) -> Iterator[tuple[str, int, Path]]:
    full = {**os.environ, "TTS_HOST": "127.0.0.1", "TTS_PORT": str(port), "TTS_DATA_DIR": str(tmp / "data"), **env}
    if checkout is not None:  # its packages first on the path: they shadow this checkout's editable install
        full["PYTHONPATH"] = os.pathsep.join([str(checkout), full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    log_path = tmp / "api.log"
    api = None
    try:
        with open(log_path, "wb") as api_log:
            api = subprocess.Popen([sys.executable, "-c", "import sys; from control_plane.cli import main; "
                                    "sys.exit(main(['serve']))"], env=full, cwd=checkout or REPO_ROOT,
                                   stdout=api_log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/health", 60, api, log_path)
        yield base, api.pid, log_path
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                api.kill()
