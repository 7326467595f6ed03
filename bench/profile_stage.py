"""`bench profile`: where the engine's loop spends its time at one concurrency level.

Wall time of the engine thread split into GPT prefill, batched decode, sampling and HiFi-GAN,
measured by timing wrappers around the engine's own components (the machine may forbid
ptrace-based samplers such as py-spy), plus how many frames the vocoder ran against how many it
emitted: the windowing overhead of streaming.
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
        timer.wrap(engine, "_iterate", "loop iteration")
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
    parts = {
        label: {"seconds": round(timer.seconds[label], 3), "calls": timer.calls[label],
                "share_of_loop": round(timer.seconds[label] / loop, 3) if loop else None}
        for label in ("GPT prefill", "GPT batched decode", "sampling", "HiFi-GAN")
    }
    accounted = sum(timer.seconds[label] for label in parts)
    parts["other (Python bookkeeping, interpolation, queues)"] = {
        "seconds": round(loop - accounted, 3), "calls": None,
        "share_of_loop": round((loop - accounted) / loop, 3) if loop else None,
    }
    result = {
        "model": bm.describe(), "concurrency": concurrency, "tokens_per_request": tokens,
        "wall_s": round(wall, 3), "loop_s": round(loop, 3), "parts": parts,
        "vocoder_frames_run": timer.frames, "frames_emitted": emitted_frames,
        "vocoder_overhead": round(timer.frames / emitted_frames, 3) if emitted_frames else None,
    }
    for label, part in parts.items():
        log(f"  {label:<50} {part['seconds']:8.2f}s  {part['share_of_loop']}")
    log(f"  vocoder frames run/emitted: {timer.frames}/{emitted_frames} = {result['vocoder_overhead']}")
    return result


def profile_markdown(result: dict[str, Any]) -> str:
    rows = [[label, part["seconds"], part["calls"], part["share_of_loop"]] for label, part in result["parts"].items()]
    table = md_table(["engine loop part", "seconds", "calls", "share of loop"], rows)
    m = result["model"]
    return (
        f"## Engine profile\n\nModel `{m['name']}`, concurrency {result['concurrency']}, "
        f"{result['tokens_per_request']} tokens per request; wall {result['wall_s']} s, engine loop busy "
        f"{result['loop_s']} s.\n\n{table}\n\nHiFi-GAN ran {result['vocoder_frames_run']} frames to emit "
        f"{result['frames_emitted']} ({result['vocoder_overhead']}x: the streaming windows' context and lookahead)."
    )
