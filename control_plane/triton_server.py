"""Find, lay out and run Triton Inference Server for the model repository (`tts-gateway triton`).

Two installations are supported: a system `tritonserver` on PATH with its backends in
/opt/tritonserver/backends (NVIDIA's container, docker/triton.Dockerfile), or the complete server
shipped inside the `nvidia-pytriton` wheel. The wheel's copy is laid out once into
`<repo>/.cache/tritonserver/<version>-py<X.Y>/` with the Python backend stub of this interpreter,
because the stub must sit beside the backend library and the wheel's own folder is read-only to us.

The stub runs the first `python3` on PATH, so the current interpreter's `bin/` goes first: the
models then import torch, coqui-tts and this project from the same environment as the launcher.
Nothing here imports torch or FastAPI.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from control_plane.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "model_repository"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "tritonserver"
SYSTEM_BACKENDS = Path("/opt/tritonserver/backends")
ALL_MODELS = ("xtts", "xtts_condition", "piper")
PYTRITON_DIST = "nvidia-pytriton"


class TritonError(RuntimeError):
    """Triton could not be found, laid out, started or did not become ready."""


@dataclass(frozen=True)
class TritonInstall:
    """Where the server binary and its backends are, and the environment the server needs."""

    executable: Path
    backend_dir: Path
    library_path: tuple[str, ...] = ()  # prepended to LD_LIBRARY_PATH
    origin: str = "system"  # "system" or "pytriton-<version>"


def _python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _has_gpu() -> bool:
    """True when an NVIDIA driver is visible; decides GPU metrics and the pinned memory pool."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in {"", "-1"}:
        return False
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists()


def _pytriton_root() -> Path | None:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _layout_pytriton(pytriton_root: Path, cache_dir: Path) -> TritonInstall:
    """Copy the wheel's bin/ and backends/ into cache_dir once per wheel version and Python version."""
    version = importlib.metadata.version(PYTRITON_DIST)
    source = pytriton_root / "tritonserver"
    stub = source / "python_backend_stubs" / _python_tag() / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonError(f"{PYTRITON_DIST} {version} has no Python backend stub for Python {_python_tag()} ({stub})")
    target = cache_dir / f"{version}-py{_python_tag()}"
    marker = target / ".complete"
    if not marker.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Build beside the target and rename: two launchers racing both finish with a complete copy.
        tmp = Path(tempfile.mkdtemp(prefix=".layout-", dir=cache_dir))
        try:
            shutil.copytree(source / "bin", tmp / "bin", symlinks=True)
            shutil.copytree(source / "backends", tmp / "backends", symlinks=True)
            shutil.copy2(stub, tmp / "backends" / "python" / "triton_python_backend_stub")
            (tmp / ".complete").write_text(f"{PYTRITON_DIST}=={version} python{_python_tag()}\n")
            try:
                tmp.rename(target)
            except OSError:
                if not marker.is_file():  # not a lost race: a half-made folder is in the way
                    shutil.rmtree(target, ignore_errors=True)
                    tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    libs = pytriton_root.parent / "nvidia_pytriton.libs"
    return TritonInstall(
        executable=target / "bin" / "tritonserver",
        backend_dir=target / "backends",
        library_path=(str(libs),),
        origin=f"pytriton-{version}",
    )


def find_triton(cache_dir: Path = DEFAULT_CACHE_DIR) -> TritonInstall:
    """A system Triton (NVIDIA's image) when there is one, else the pytriton wheel's server laid out in cache_dir."""
    system = shutil.which("tritonserver")
    if system and (SYSTEM_BACKENDS / "python").is_dir():
        return TritonInstall(executable=Path(system), backend_dir=SYSTEM_BACKENDS)
    root = _pytriton_root()
    if root is None:
        raise TritonError(
            "no tritonserver found: install NVIDIA's Triton (tritonserver on PATH, backends in "
            f"{SYSTEM_BACKENDS}) or `pip install --no-deps {PYTRITON_DIST}==0.7.0`"
        )
    return _layout_pytriton(root, cache_dir)


def server_environment(install: TritonInstall, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment plus what the server and its Python stub need."""
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""  # libpython for the stub
    ld_parts = [*install.library_path, libdir, env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in ld_parts if p)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in (venv_bin, env.get("PATH", "")) if p)
    # Models import tts_engine from the repository even where the project is not installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("PYTHONUTF8", "1")  # the stub starts under the C locale otherwise
    env.update(extra or {})
    return env


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
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _log_file: object = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, models: Sequence[str] | None = None, **overrides) -> TritonServer:
        env = {"XTTS_MODEL_PATH": settings.xtts_model_path} if settings.xtts_model_path else {}
        kwargs = dict(
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
        gpu = _has_gpu()
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
            raise TritonError("this TritonServer is already running")
        repo = Path(self.model_repository)
        if not repo.is_dir():
            raise TritonError(f"model repository {repo} does not exist")
        for port in self.ports:
            if port_in_use(port):
                raise TritonError(f"port {port} is already in use (another Triton running?)")
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
            raise TritonError(f"{path} failed: {detail}; log tail:\n{self.log_tail()}") from error

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
        """Poll /v2/health/ready; raise TritonError with the log tail if the server exits or times out."""
        if self.process is None:
            raise TritonError("start() the server first")
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise TritonError(f"tritonserver exited with code {code} before it was ready; log tail:\n"
                                  f"{self.log_tail()}")
            if self.is_ready():
                return self
            if time.monotonic() > deadline:
                raise TritonError(f"tritonserver not ready after {timeout:.0f} s; log tail:\n{self.log_tail()}")
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
    except TritonError as error:
        print(f"tts-gateway triton: {error}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
