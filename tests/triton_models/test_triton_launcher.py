"""devtools.triton_server: layout, start/ready/stop, fail-fast errors and the `tts-gateway triton` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.triton_server import (
    DEFAULT_MODEL_REPOSITORY,
    REPO_ROOT,
    TritonLaunchError,
    TritonServer,
    find_triton,
    free_ports,
    port_in_use,
    server_environment,
)


def _server(tmp_path: Path, **kwargs) -> TritonServer:
    http, grpc, metrics = free_ports(3)
    return TritonServer(http_port=http, grpc_port=grpc, metrics_port=metrics,
                        log_path=tmp_path / "triton.log", **kwargs)


def test_layout_is_complete_and_idempotent() -> None:
    first = find_triton()
    assert first.executable.is_file() and os.access(first.executable, os.X_OK)
    assert (first.backend_dir / "python" / "libtriton_python.so").is_file()
    assert (first.backend_dir / "python" / "triton_python_backend_stub").is_file()
    started = time.perf_counter()
    again = find_triton()
    assert again == first
    assert time.perf_counter() - started < 5.0  # already laid out: nothing copied (a copy takes far longer)


def test_environment_runs_this_interpreter_and_finds_the_project() -> None:
    env = server_environment(find_triton(), {"XTTS_MODEL_PATH": "/models/xtts"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert str(REPO_ROOT) in env["PYTHONPATH"].split(os.pathsep)
    assert env["XTTS_MODEL_PATH"] == "/models/xtts"


def test_start_ready_stop_frees_process_and_ports(tmp_path: Path) -> None:
    server = _server(tmp_path, models=[])
    with server:
        assert server.is_ready()
        assert all(port_in_use(port) for port in server.ports)
        pid = server.process.pid
        command = server.process.args
        assert "--model-control-mode=explicit" in command
        assert "--allow-gpu-metrics=false" in command or "--allow-gpu-metrics=true" in command
    assert server.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not any(port_in_use(port) for port in server.ports)


def test_unknown_model_fails_fast_with_the_log(tmp_path: Path) -> None:
    server = _server(tmp_path, models=["no_such_model"])
    server.start()
    try:
        started = time.perf_counter()
        with pytest.raises(TritonLaunchError, match="no_such_model"):
            server.wait_ready(timeout=60)
        assert time.perf_counter() - started < 30
    finally:
        server.stop()


def test_busy_port_is_refused_before_launch(tmp_path: Path) -> None:
    server = _server(tmp_path, models=[])
    with server:
        clash = TritonServer(http_port=server.http_port, grpc_port=free_ports(1)[0], metrics_port=free_ports(1)[0],
                             models=[], log_path=tmp_path / "clash.log")
        with pytest.raises(TritonLaunchError, match="already in use"):
            clash.start()


def test_cli_serves_until_sigint(tmp_path: Path) -> None:
    http, grpc, metrics = free_ports(3)
    env = {**os.environ, "TTS_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "control_plane.cli", "triton", "--models", "piper", "--http-port", str(http),
         "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--model-repository", str(DEFAULT_MODEL_REPOSITORY)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO_ROOT,
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "metrics" in line and f":{metrics}/metrics" in line:
                break
        output = "".join(lines)
        assert "Triton is ready" in output, output + (tmp_path / "triton.log").read_text(errors="replace")[-3000:]
        assert f"127.0.0.1:{grpc}" in output
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not any(port_in_use(port) for port in (http, grpc, metrics))


def test_cli_refuses_xtts_without_an_artifact(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "XTTS_MODEL_PATH"}
    env["TTS_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "control_plane.cli", "triton", "--models", "xtts"],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 2
    assert "XTTS_MODEL_PATH" in done.stderr
