"""`bench length`: the cost of one utterance against its length, streamed and not, ours and the reference.

One request at a time on an otherwise idle engine. The reference streams with `inference_stream`
(HiFi-GAN re-run over all latents at every 20-token chunk: quadratic) and, not streaming, the
same call with chunking off (one HiFi-GAN pass at the end). Ours streams with the engine's
windowed vocoder and, not streaming, with chunks as large as the engine allows.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.driver import run_one, verify_tokens
from bench.engine_side import EngineSide
from bench.models import BenchModel
from bench.reference import ReferenceServer
from bench.results import md_table
from bench.workload import BenchRequest, tokens_for_seconds

DEFAULT_SECONDS = (5, 15, 30, 60)
NON_STREAMING_CHUNK = 1000  # the engine's largest chunk setting: one vocoder pass up to ~46 s


def _measure(side, seconds: float, repeats: int, seed: int) -> dict[str, Any]:
    tokens = tokens_for_seconds(seconds)
    walls, cpus, ttfas, problems = [], [], [], []
    for k in range(repeats):
        request = BenchRequest(k, "The quick brown fox jumps over the lazy dog.", "en", tokens, seed + k)
        cpu0 = time.process_time()
        record = run_one(side, request)
        cpus.append(time.process_time() - cpu0)
        walls.append(record.finished - record.submitted if record.finished else float("nan"))
        if record.ttfa is not None:
            ttfas.append(record.ttfa)
        problems += verify_tokens([record])
    return {
        "seconds": seconds,
        "tokens": tokens,
        "wall_s": round(statistics.median(walls), 4),
        "cpu_s": round(statistics.median(cpus), 4),
        "ttfa_ms": round(statistics.median(ttfas) * 1000, 2) if ttfas else None,
        "repeats": repeats,
        "problems": problems,
    }


def run_length_stage(
    bm: BenchModel,
    *,
    seconds: list[float],
    repeats: int = 1,
    reference_max_seconds: float = 30,
    include_reference: bool = True,
    seed: int = 77,
    log=print,
) -> dict[str, Any]:
    sides: list[tuple[str, Any]] = []
    engine_streaming = EngineSide(bm, max_batch_size=1)
    engine_whole = EngineSide(bm, max_batch_size=1, first_chunk_tokens=NON_STREAMING_CHUNK,
                              chunk_tokens=NON_STREAMING_CHUNK)
    sides.append(("ours_streaming", engine_streaming))
    sides.append(("ours_non_streaming", engine_whole))
    if include_reference:
        sides.append(("reference_streaming", ReferenceServer(bm)))
        sides.append(("reference_non_streaming", ReferenceServer(bm, stream_chunk_size=0)))
    rows = []
    try:
        for _, side in sides:  # warm-up
            run_one(side, BenchRequest(0, "Warm up.", "en", 8, seed))
        for s in seconds:
            row: dict[str, Any] = {"seconds": s}
            for name, side in sides:
                if name.startswith("reference") and s > reference_max_seconds:
                    row[name] = None
                    continue
                row[name] = _measure(side, s, repeats, seed)
                log(f"  {s:>4}s {name:<24} wall {row[name]['wall_s']:.2f}s cpu {row[name]['cpu_s']:.2f}s")
            for prefix in ("ours", "reference"):
                stream, whole = row.get(f"{prefix}_streaming"), row.get(f"{prefix}_non_streaming")
                if stream and whole:
                    row[f"{prefix}_stream_cost_ratio_wall"] = round(stream["wall_s"] / whole["wall_s"], 3)
                    row[f"{prefix}_stream_cost_ratio_cpu"] = round(stream["cpu_s"] / whole["cpu_s"], 3)
            rows.append(row)
    finally:
        engine_streaming.close()
        engine_whole.close()
    return {"model": bm.describe(), "reference_max_seconds": reference_max_seconds, "rows": rows}


def length_markdown(result: dict[str, Any]) -> str:
    m = result["model"]

    def w(entry):
        return entry["wall_s"] if entry else None

    rows = [
        [r["seconds"], w(r.get("ours_streaming")), w(r.get("ours_non_streaming")), r.get("ours_stream_cost_ratio_wall"),
         r.get("ours_stream_cost_ratio_cpu"), w(r.get("reference_streaming")), w(r.get("reference_non_streaming")),
         r.get("reference_stream_cost_ratio_wall")]
        for r in result["rows"]
    ]
    table = md_table(
        ["audio s", "ours stream s", "ours whole s", "ours stream/whole (wall)", "ours stream/whole (cpu)",
         "ref stream s", "ref whole s", "ref stream/whole (wall)"],
        rows,
    )
    return (
        f"## Cost against length (one request alone)\n\nModel `{m['name']}` ({m['params'] / 1e6:.1f} M params, "
        f"{m['device']} {m['dtype']}); wall seconds to produce the whole utterance (median of repeats). "
        f"Reference skipped above {result['reference_max_seconds']} s (quadratic).\n\n{table}"
    )
