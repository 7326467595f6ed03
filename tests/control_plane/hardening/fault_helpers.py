"""Real servers the fault tests kill and restart: a Triton of their own (never the session's), on fixed
ports so that a restarted one is the same address to the gateway."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from devtools.triton_server import DEFAULT_MODEL_REPOSITORY, TritonServer, free_ports


class KillableTriton:
    """A tritonserver serving `models`; `kill()` is SIGKILL to its process group, `restart()` the same ports."""

    def __init__(self, log_dir: Path, models: list[str], env: dict[str, str] | None = None,
                 host: str = "127.0.0.1", ports: tuple[int, int, int] | None = None):
        """`host` other than 127.0.0.1 (another loopback address) binds all three endpoints to it only, so
        several servers can share `ports` (HTTP, gRPC, metrics) on different addresses, as pods do."""
        self.log_dir = log_dir
        self.models = models
        self.env = env or {}
        self.host = host
        self.http_port, self.grpc_port, self.metrics_port = ports or free_ports(3)
        self.server: TritonServer | None = None
        self.starts = 0

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def start(self, timeout: float = 120) -> None:
        self.starts += 1
        bind = [] if self.host == "127.0.0.1" else [
            f"--http-address={self.host}", f"--grpc-address={self.host}", f"--metrics-address={self.host}"]
        self.server = TritonServer(
            model_repository=DEFAULT_MODEL_REPOSITORY, http_port=self.http_port, grpc_port=self.grpc_port,
            metrics_port=self.metrics_port, models=self.models, env=self.env, host=self.host, extra_args=bind,
            log_path=self.log_dir / f"triton-{self.starts}.log",
        )
        self.server.start()
        self.server.wait_ready(timeout=timeout)

    def kill(self) -> None:
        process = self.server.process
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace_s=5)


async def eventually(check: Callable, within: float, interval: float = 0.25) -> float:
    """Await `check()` (a coroutine function) until it returns truthy; returns the seconds it took."""
    import asyncio

    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


class KillableRedis:
    """A redis-server on a fixed port that a test can kill and start again."""

    def __init__(self) -> None:
        self.port = free_ports(1)[0]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server not found: install the redis-server package (make system-deps)"
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


class ServeProcess:
    """`python -m control_plane.cli serve` as a real process, its stdout and stderr (JSON logs) in `log_path`."""

    def __init__(self, triton, data_dir: Path, **env: str):
        from gateway_helpers import ADMIN_TOKEN, free_port

        from control_plane.settings import REPO_ROOT

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "gateway.log"
        self.env = {
            **os.environ, "PYTHONPATH": str(REPO_ROOT), "TTS_HOST": "127.0.0.1", "TTS_PORT": str(self.port),
            "TTS_DATA_DIR": str(data_dir), "TTS_ADMIN_TOKEN": ADMIN_TOKEN, "DATABASE_URL": "", "REDIS_URL": "",
            "TRITON_GRPC_URL": triton.grpc_url, "TRITON_HTTP_URL": triton.http_url,
            "TRITON_METRICS_URL": triton.metrics_url, **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> ServeProcess:
        import sys

        import httpx

        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "control_plane.cli", "serve"], env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.log_path.read_text()[-3000:]
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(10)
            self._log.close()

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")
