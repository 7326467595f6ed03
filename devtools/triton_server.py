"""One tritonserver process for the model repository: start, wait until ready, load models, stop.

Nothing here imports torch or FastAPI; tests, benchmarks and `tts-gateway up` run Triton through it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from devtools.triton_install import (
    DEFAULT_CACHE_DIR,
    DEFAULT_MODEL_REPOSITORY,
    REPO_ROOT,
    TritonInstall,
    TritonLaunchError,
    find_triton,
    has_gpu,
    server_environment,
)

if TYPE_CHECKING:
    from control_plane.settings import Settings

__all__ = [
    "DEFAULT_MODEL_REPOSITORY", "REPO_ROOT", "TritonLaunchError", "TritonServer", "find_triton", "free_ports",
    "port_in_use", "server_environment",
]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that were free a moment ago on 127.0.0.1."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class TritonServer:
    """One tritonserver process; `with TritonServer(...) as server:` starts it, waits ready, stops it.

    `models=None` loads every model in the repository; a list loads only those (explicit model
    control, so tests can start a subset). `env` is added to the server's environment, e.g.
    XTTS_MODEL_PATH for the xtts models.
    """

    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    models: Sequence[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    host: str = "127.0.0.1"  # where clients reach it; the server listens on all interfaces
    exit_timeout_s: int = 10
    extra_args: Sequence[str] = ()
    cache_dir: Path = DEFAULT_CACHE_DIR
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, models: Sequence[str] | None = None, **overrides: Any) -> TritonServer:
        env = {"XTTS_MODEL_PATH": settings.xtts_model_path} if settings.xtts_model_path else {}
        kwargs: dict[str, Any] = dict(
            model_repository=Path(settings.triton_model_repository),
            http_port=settings.triton_http_port,
            grpc_port=settings.triton_grpc_port,
            metrics_port=settings.triton_metrics_port,
            models=models,
            env=env,
            log_path=Path(settings.tts_data_dir) / "triton.log",
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.http_port, self.grpc_port, self.metrics_port)

    def command(self, install: TritonInstall) -> list[str]:
        gpu = has_gpu()
        args = [
            str(install.executable),
            f"--model-repository={Path(self.model_repository).absolute()}",
            f"--backend-directory={install.backend_dir}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            f"--allow-gpu-metrics={'true' if gpu else 'false'}",
            "--model-control-mode=explicit",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            "--log-verbose=0",
        ]
        if not gpu:
            args.append("--pinned-memory-pool-byte-size=0")
        models = list(self.models) if self.models is not None else ["*"]
        args += [f"--load-model={name}" for name in models]
        return args + list(self.extra_args)

    def start(self) -> TritonServer:
        if self.process is not None and self.process.poll() is None:
            raise TritonLaunchError("this TritonServer is already running")
        repo = Path(self.model_repository)
        if not repo.is_dir():
            raise TritonLaunchError(f"model repository {repo} does not exist")
        for port in self.ports:
            if port_in_use(port):
                raise TritonLaunchError(f"port {port} is already in use (another Triton running?)")
        install = find_triton(self.cache_dir)
        if self.log_path is None:
            self.log_path = Path(tempfile.mkdtemp(prefix="triton-log-")) / "triton.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the server's lifetime)
        self.process = subprocess.Popen(
            self.command(install),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_environment(install, self.env),
            start_new_session=True,  # its own process group: stop() can reach the Python stubs too
        )
        return self

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines) if self.log_path else "(no log)"

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _repository_call(self, path: str, timeout: float) -> None:
        request = urllib.request.Request(f"{self.http_url}/v2/repository/{path}", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise TritonLaunchError(f"{path} failed: {detail}; log tail:\n{self.log_tail()}") from error

    def load_model(self, name: str, timeout: float = 300.0) -> None:
        """Load (or reload) a model of the repository; returns once it is ready, raises with the log tail."""
        self._repository_call(f"models/{name}/load", timeout)

    def unload_model(self, name: str, timeout: float = 60.0) -> None:
        self._repository_call(f"models/{name}/unload", timeout)

    def model_ready(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/models/{name}/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> TritonServer:
        """Poll /v2/health/ready; raise TritonLaunchError with the log tail if the server exits or times out."""
        if self.process is None:
            raise TritonLaunchError("start() the server first")
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise TritonLaunchError(f"tritonserver exited with code {code} before it was ready; log tail:\n"
                                  f"{self.log_tail()}")
            if self.is_ready():
                return self
            if time.monotonic() > deadline:
                raise TritonLaunchError(f"tritonserver not ready after {timeout:.0f} s; log tail:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM, wait up to grace_s, then SIGKILL the whole process group; returns the exit code."""
        process = self.process
        if process is None:
            return None
        try:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            # Stubs left behind by a crashed server share its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            return process.returncode
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
