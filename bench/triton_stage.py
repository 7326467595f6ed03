"""`bench triton`: the same streams over gRPC through a real Triton, against the engine in process.

Both load one artifact exported from the benchmark model, so weights, vocoder path and requests
are identical; the difference is Triton's share: gRPC, the Python backend's IPC and the relay
thread. The in-process engine runs first and is stopped before Triton starts (two cores: they
must not compete).
"""

from __future__ import annotations

import queue
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.driver import run_concurrent
from bench.engine_side import EngineSide
from bench.engine_stage import _line, run_paired_level
from bench.errors import StageUnavailable, start_triton
from bench.models import BenchModel, build_model
from bench.results import REPO_ROOT, md_table
from bench.workload import BenchRequest, make_requests


class TritonSide:
    """Streams a request to the `xtts` model over a gRPC stream (one client connection per request)."""

    name = "triton"

    def __init__(self, grpc_url: str, bm: BenchModel, timeout: float = 600.0):
        self.grpc_url = grpc_url
        self.timeout = timeout
        self.cond = bm.gpt_cond_latent[0].float().cpu().numpy()
        self.speaker = bm.speaker_embedding.float().cpu().numpy().reshape(-1)

    def _inputs(self, request: BenchRequest) -> list:
        import tritonclient.grpc as grpcclient

        arrays = {
            "TEXT": (np.array([request.text.encode()], dtype=np.object_), "BYTES"),
            "LANGUAGE": (np.array([request.language.encode()], dtype=np.object_), "BYTES"),
            "GPT_COND_LATENT": (np.ascontiguousarray(self.cond, dtype=np.float32), "FP32"),
            "SPEAKER_EMBEDDING": (np.ascontiguousarray(self.speaker, dtype=np.float32), "FP32"),
            "SEED": (np.array([request.seed], dtype=np.int64), "INT64"),
            "MAX_NEW_TOKENS": (np.array([request.tokens], dtype=np.int32), "INT32"),
        }
        made = []
        for name, (array, dtype) in arrays.items():
            item = grpcclient.InferInput(name, list(array.shape), dtype)
            item.set_data_from_numpy(array)
            made.append(item)
        return made

    def stream(self, request: BenchRequest, on_tokens: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        import tritonclient.grpc as grpcclient

        responses: queue.Queue = queue.Queue()
        client = grpcclient.InferenceServerClient(self.grpc_url)
        client.start_stream(callback=lambda result=None, error=None: responses.put((result, error)))
        try:
            client.async_stream_infer("xtts", self._inputs(request), request_id=uuid.uuid4().hex,
                                      enable_empty_final_response=True)
            while True:
                result, error = responses.get(timeout=self.timeout)
                if error is not None:
                    raise RuntimeError(f"triton: {error}")
                response = result.get_response()
                if any(out.name == "AUDIO" for out in response.outputs):
                    yield np.asarray(result.as_numpy("AUDIO"), dtype=np.float32).reshape(-1)
                if response.parameters["triton_final_response"].bool_param:
                    return
        finally:
            client.stop_stream()
            client.close()


def _xtts_model_present() -> bool:
    return (REPO_ROOT / "model_repository" / "xtts" / "config.pbtxt").is_file()


def run_triton_stage(args, log=print) -> dict[str, Any]:
    if not _xtts_model_present():
        raise StageUnavailable("model_repository/xtts is not in this tree")
    if args.device != "cpu":
        raise StageUnavailable("the Triton stage runs on the CPU here (the GPU machines have no Triton)")
    from devtools.triton_server import TritonServer, free_ports
    from tts_engine.xtts.engine import XttsEngine

    concurrency, tokens, rounds = args.concurrency, args.tokens, args.rounds
    bm = build_model(args.model, max_audio_tokens=max(tokens, 64), seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as tmp:
        from bench.artifact import export_bench_model

        artifact = export_bench_model(bm, Path(tmp) / "xtts")
        http, grpc, metrics = free_ports(3)
        server = TritonServer(
            http_port=http, grpc_port=grpc, metrics_port=metrics, models=["xtts"],
            env={"XTTS_MODEL_PATH": str(artifact), "XTTS_MAX_BATCH_SIZE": str(max(concurrency)),
                 "OMP_NUM_THREADS": str(args.threads or 1)},  # the same torch threads as in process
            log_path=Path(tmp) / "triton.log",
        )
        started = time.perf_counter()
        start_triton(server, timeout=600)
        ready_s = time.perf_counter() - started
        # Both stay up; an idle engine waits on a condition and costs nothing while the other side runs.
        engine = XttsEngine.from_artifact(artifact, device="cpu", max_batch_size=max(concurrency))
        sides = {"engine": EngineSide(bm, engine=engine), "triton": TritonSide(server.grpc_url, bm)}
        try:
            for side in sides.values():
                run_concurrent(side, make_requests(1, 8, seed=99), 1)  # warm-up
            paired = []
            for c in concurrency:
                level = run_paired_level(sides, c, tokens, rounds, seed=4321, repeats=args.repeats)
                for name in sides:
                    log(f"  c={c:<3} {name:<7} {_line(level[name])}")
                paired.append(level)
        finally:
            sides["engine"].close()
            server.stop()

    levels = []
    for c, pair in zip(concurrency, paired, strict=True):
        local, remote = pair["engine"], pair["triton"]
        level = {"concurrency": c, "engine": local, "triton": remote}
        if local["ttfa_p50_ms"] is not None and remote["ttfa_p50_ms"] is not None:
            level["ttfa_p50_overhead_ms"] = round(remote["ttfa_p50_ms"] - local["ttfa_p50_ms"], 2)
        if local["audio_s_per_wall_s"] and remote["audio_s_per_wall_s"]:
            level["throughput_triton_over_in_process"] = round(
                remote["audio_s_per_wall_s"] / local["audio_s_per_wall_s"], 3
            )
        levels.append(level)
    return {"model": bm.describe(), "tokens_per_request": tokens, "rounds": rounds, "repeats": args.repeats,
            "triton_ready_s": round(ready_s, 1), "levels": levels}


def triton_markdown(result: dict[str, Any]) -> str:
    m = result["model"]
    rows = [
        [lv["concurrency"], lv["engine"]["audio_s_per_wall_s"], lv["triton"]["audio_s_per_wall_s"],
         lv.get("throughput_triton_over_in_process"), lv["engine"]["ttfa_p50_ms"], lv["triton"]["ttfa_p50_ms"],
         lv.get("ttfa_p50_overhead_ms"), lv["engine"]["ttfa_p95_ms"], lv["triton"]["ttfa_p95_ms"]]
        for lv in result["levels"]
    ]
    table = md_table(
        ["conc.", "in-process audio-s/s", "Triton audio-s/s", "Triton/in-process", "in-process TTFA p50 ms",
         "Triton TTFA p50 ms", "Triton TTFA overhead p50 ms", "in-process TTFA p95 ms", "Triton TTFA p95 ms"],
        rows,
    )
    return (
        f"## Triton (gRPC streaming) vs the engine in process\n\nModel `{m['name']}` ({m['params'] / 1e6:.1f} M "
        f"params, cpu), {result['tokens_per_request']} tokens per request; both load the same exported artifact.\n\n"
        f"{table}"
    )
