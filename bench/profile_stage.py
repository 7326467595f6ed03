"""`bench profile`: where the engine spends its time at one concurrency level.

The engine runs two threads side by side: the decode loop (GPT prefill, batched decode, sampling)
and the vocoder thread (HiFi-GAN). Each thread's busy time is split into parts by timing wrappers
around the engine's own components (the machine may forbid ptrace-based samplers such as py-spy)
and shown as a share of the run's wall time: the busier thread bounds throughput. Also how many
frames the vocoder ran against how many it emitted: the windowing overhead of streaming.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from bench.driver import HOP, run_concurrent
from bench.engine_side import EngineSide
from bench.models import BenchModel
from bench.results import md_table
from bench.workload import make_requests


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.frames = 0

    def wrap(self, obj: Any, attr: str, label: str) -> None:
        original = getattr(obj, attr)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start
                self.calls[label] += 1

        setattr(obj, attr, timed)


def run_profile_stage(bm: BenchModel, *, concurrency: int, tokens: int, log=print) -> dict[str, Any]:
    side = EngineSide(bm, max_batch_size=concurrency)
    engine = side.engine
    timer = _Timer()
    try:
        run_concurrent(side, make_requests(1, 8, seed=99), 1)  # warm-up, not profiled
        timer.wrap(engine, "run_step", "loop iteration")
        timer.wrap(engine.batcher.decoder, "prefill", "GPT prefill")
        timer.wrap(engine.batcher.decoder, "decode", "GPT batched decode")
        timer.wrap(engine.batcher.sampling, "choose", "sampling")
        decode_frames = engine.frame_decoder

        def vocoder(z, g):
            start = time.perf_counter()
            try:
                return decode_frames(z, g)
            finally:
                timer.seconds["HiFi-GAN"] += time.perf_counter() - start
                timer.calls["HiFi-GAN"] += 1
                timer.frames += int(z.shape[-1])

        engine.frame_decoder = vocoder
        records, wall = run_concurrent(side, make_requests(concurrency, tokens, seed=1234), concurrency)
    finally:
        side.close()
    emitted_frames = sum(r.samples for r in records) // HOP
    loop = timer.seconds.get("loop iteration", 0.0)
    pipelined = engine.worker is not None
    decode_parts = ("GPT prefill", "GPT batched decode", "sampling")
    parts = {}
    for label in (*decode_parts, "HiFi-GAN"):
        thread = "vocoder" if pipelined and label == "HiFi-GAN" else "decode loop"
        parts[label] = {"thread": thread, "seconds": round(timer.seconds[label], 3), "calls": timer.calls[label],
                        "share_of_wall": round(timer.seconds[label] / wall, 3) if wall else None}
    accounted = sum(timer.seconds[label] for label in decode_parts)
    if not pipelined:
        accounted += timer.seconds["HiFi-GAN"]
    parts["other (Python bookkeeping, interpolation, queues)"] = {
        "thread": "decode loop", "seconds": round(loop - accounted, 3), "calls": None,
        "share_of_wall": round((loop - accounted) / wall, 3) if wall else None,
    }
    result = {
        "model": bm.describe(), "concurrency": concurrency, "tokens_per_request": tokens, "pipelined": pipelined,
        "wall_s": round(wall, 3), "loop_s": round(loop, 3),
        "vocoder_s": round(timer.seconds["HiFi-GAN"], 3) if pipelined else None, "parts": parts,
        "vocoder_frames_run": timer.frames, "frames_emitted": emitted_frames,
        "vocoder_overhead": round(timer.frames / emitted_frames, 3) if emitted_frames else None,
    }
    for label, part in parts.items():
        log(f"  {part['thread']:<12} {label:<50} {part['seconds']:8.2f}s  {part['share_of_wall']}")
    log(f"  vocoder frames run/emitted: {timer.frames}/{emitted_frames} = {result['vocoder_overhead']}")
    return result


def profile_markdown(result: dict[str, Any]) -> str:
    rows = [[part.get("thread", "decode loop"), label, part["seconds"], part["calls"],
             part.get("share_of_wall", part.get("share_of_loop"))] for label, part in result["parts"].items()]
    table = md_table(["thread", "part", "seconds", "calls", "share of wall time"], rows)
    m = result["model"]
    busy = f"decode loop busy {result['loop_s']} s"
    if result.get("vocoder_s") is not None:
        busy += f", vocoder thread busy {result['vocoder_s']} s (the two run side by side)"
    return (
        f"## Engine profile\n\nModel `{m['name']}`, concurrency {result['concurrency']}, "
        f"{result['tokens_per_request']} tokens per request; wall {result['wall_s']} s, {busy}.\n\n{table}\n\n"
        f"HiFi-GAN ran {result['vocoder_frames_run']} frames to emit {result['frames_emitted']} "
        f"({result['vocoder_overhead']}x: the streaming windows' context and lookahead)."
    )
