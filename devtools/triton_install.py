"""Finding Triton Inference Server and laying it out so it can run here.

Two installations are supported: a system `tritonserver` on PATH with its backends in
/opt/tritonserver/backends (NVIDIA's container, docker/triton.Dockerfile), or the complete server
shipped inside the `nvidia-pytriton` wheel. The wheel's copy is laid out once into
`<repo>/.cache/tritonserver/<version>-py<X.Y>/` with the Python backend stub of this interpreter,
because the stub must sit beside the backend library and the wheel's own folder is read-only to us.

The stub runs the first `python3` on PATH, so the current interpreter's `bin/` goes first: the
models then import torch, coqui-tts and this project from the same environment as the launcher.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "model_repository"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "tritonserver"
SYSTEM_BACKENDS = Path("/opt/tritonserver/backends")
ALL_MODELS = ("xtts", "xtts_condition", "piper")
PYTRITON_DIST = "nvidia-pytriton"


class TritonLaunchError(RuntimeError):
    """Triton could not be found, laid out, started or did not become ready (the control plane's own
    TritonError, in adapters/triton.py, is about requests to a running server)."""


@dataclass(frozen=True)
class TritonInstall:
    """Where the server binary and its backends are, and the environment the server needs."""

    executable: Path
    backend_dir: Path
    library_path: tuple[str, ...] = ()  # prepended to LD_LIBRARY_PATH
    origin: str = "system"  # "system" or "pytriton-<version>"


def _python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def has_gpu() -> bool:
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
        raise TritonLaunchError(f"{PYTRITON_DIST} {version} has no Python backend stub for Python {_python_tag()} "
                                f"({stub})")
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
        raise TritonLaunchError(
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
