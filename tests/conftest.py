"""Session fixtures shared by every test folder.

- `tiny_xtts_artifact`: the tiny random-weight XTTS-v2 exported once per session (a served artifact).
- `triton_server`: one real tritonserver for the session, on free ports, serving model_repository/
  with every model loaded (xtts, xtts_condition on the tiny artifact; piper).
- `triton_piper`: the same server with only piper guaranteed loaded; it never builds the XTTS
  artifact, so piper-only test runs stay quick.

The server starts on first use only, so test folders that never ask for it never pay for it, and it
starts with no model loaded: each fixture loads what it needs through the repository API. A server
that cannot start or load a model fails the test with the server's log tail; nothing is skipped.
"""

from __future__ import annotations

import os
import queue
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from devtools.triton_server import DEFAULT_MODEL_REPOSITORY, TritonLaunchError, TritonServer, free_ports

# Admission control sheds by how fast this machine happens to be at the moment; tests about anything
# else must not depend on that, so gateways (in process and subprocesses, which inherit this) admit
# everything unless a test turns it on with its own settings (tests/control_plane/test_admission*.py).
# The load run (`make load-test`) keeps the default on.
os.environ.setdefault("ADMISSION_MAX_WAIT_S", "0")

XTTS_MODELS = ("xtts", "xtts_condition")
XTTS_MAX_BATCH = 8  # decode rows of the served xtts engine (XTTS_MAX_BATCH_SIZE); small keeps CPU tests quick


@dataclass
class StreamResult:
    """Everything one decoupled request streamed back: output tensors per response, or the error."""

    chunks: list[dict[str, np.ndarray]]
    error: str | None
    first_chunk_s: float | None
    total_s: float

    def audio(self) -> np.ndarray:
        parts = [chunk["AUDIO"] for chunk in self.chunks if "AUDIO" in chunk]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def make_inputs(inputs: dict[str, np.ndarray], module) -> list:
    """tritonclient InferInput objects from numpy arrays (object arrays are TYPE_STRING)."""
    from tritonclient.utils import np_to_triton_dtype

    made = []
    for name, array in inputs.items():
        array = np.asarray(array)
        item = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        item.set_data_from_numpy(array)
        made.append(item)
    return made


@dataclass
class TritonHandle:
    """What tests need of the session's Triton: its URLs, its log and which models are loaded."""

    server: TritonServer
    artifact_path: Path
    xtts_max_batch: int = XTTS_MAX_BATCH
    loaded: set[str] = field(default_factory=set)

    @property
    def grpc_url(self) -> str:
        return self.server.grpc_url

    @property
    def http_url(self) -> str:
        return self.server.http_url

    @property
    def metrics_url(self) -> str:
        return self.server.metrics_url

    def log_tail(self, lines: int = 80) -> str:
        return self.server.log_tail(lines)

    def stream(self, model: str, inputs: dict[str, np.ndarray], timeout: float = 120.0, request_id: str | None = None,
               on_first_chunk=None) -> StreamResult:
        """Send one request to a decoupled model over a gRPC stream and collect every response.

        `on_first_chunk()` runs once, right after the first audio response arrives (e.g. to cancel).
        """
        import tritonclient.grpc as grpcclient

        responses: queue.Queue = queue.Queue()
        client = grpcclient.InferenceServerClient(self.grpc_url)
        chunks: list[dict[str, np.ndarray]] = []
        error = None
        first = None
        started = time.perf_counter()
        client.start_stream(callback=lambda result=None, error=None: responses.put((result, error)))
        try:
            client.async_stream_infer(model, make_inputs(inputs, grpcclient), request_id=request_id or uuid.uuid4().hex,
                                      enable_empty_final_response=True)
            while True:
                result, failure = responses.get(timeout=timeout)
                if failure is not None:
                    error = str(failure)
                    break
                response = result.get_response()
                outputs = {out.name: result.as_numpy(out.name) for out in response.outputs}
                if outputs:
                    chunks.append(outputs)
                    if first is None:
                        first = time.perf_counter() - started
                        if on_first_chunk is not None:
                            on_first_chunk()
                if response.parameters["triton_final_response"].bool_param:
                    break
        finally:
            client.stop_stream()
            client.close()
        return StreamResult(chunks, error, first, time.perf_counter() - started)

    def cancel(self, model: str, request_id: str) -> StreamResult:
        """Ask a decoupled model to stop the running request `request_id` (the model's cancel protocol)."""
        return self.stream(model, {"CANCEL_REQUEST_ID": np.array([request_id.encode()], dtype=object)})

    def metrics_text(self) -> str:
        import urllib.request

        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            return response.read().decode()

    def ensure_loaded(self, *names: str) -> TritonHandle:
        for name in names:
            if name not in self.loaded:
                try:
                    self.server.load_model(name)
                except TritonLaunchError as error:
                    pytest.fail(f"Triton could not load {name}: {error}", pytrace=False)
                self.loaded.add(name)
        return self


@pytest.fixture(scope="session")
def _xtts_artifact_dir(tmp_path_factory) -> Path:
    """Where the session's tiny artifact lives (known before it is built, so Triton can start first)."""
    return tmp_path_factory.mktemp("xtts-artifact") / "xtts"


@pytest.fixture(scope="session")
def tiny_xtts_artifact(_xtts_artifact_dir) -> Path:
    """The tiny XTTS-v2 (random weights, test_weights=true) exported with its ONNX vocoder."""
    from export.xtts import export_tiny

    return export_tiny(_xtts_artifact_dir, seed=0)


@pytest.fixture(scope="session")
def _triton(_xtts_artifact_dir, tmp_path_factory) -> Iterator[TritonHandle]:
    http, grpc, metrics = free_ports(3)
    server = TritonServer(
        model_repository=DEFAULT_MODEL_REPOSITORY,
        http_port=http,
        grpc_port=grpc,
        metrics_port=metrics,
        models=[],  # explicit model control: fixtures load what their tests use
        env={"XTTS_MODEL_PATH": str(_xtts_artifact_dir), "XTTS_MAX_BATCH_SIZE": str(XTTS_MAX_BATCH)},
        log_path=tmp_path_factory.mktemp("triton") / "triton.log",
    )
    try:
        server.start()
        server.wait_ready(timeout=120)
    except TritonLaunchError as error:
        server.stop()
        pytest.fail(f"Triton did not start: {error}", pytrace=False)
    try:
        yield TritonHandle(server=server, artifact_path=_xtts_artifact_dir)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def triton_server(_triton, tiny_xtts_artifact) -> TritonHandle:
    """The session's Triton with xtts, xtts_condition and piper loaded."""
    return _triton.ensure_loaded(*XTTS_MODELS, "piper")


@pytest.fixture(scope="session")
def triton_piper(_triton) -> TritonHandle:
    """The session's Triton with piper loaded (the XTTS models only if another test loaded them)."""
    return _triton.ensure_loaded("piper")
