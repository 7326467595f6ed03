"""`bench quick` (`make bench-quick`): the key ratios in under 5 minutes on a 2-core CPU, tiny model.

One line per ratio, each next to its target:
  throughput ours/reference at concurrency 8, gateway added p50, streaming/non-streaming cost of a
  30 s utterance, and our time to first audio (p50) at concurrency 1 and 8.
"""

from __future__ import annotations

import time
from typing import Any

from bench.errors import StageUnavailable

QUICK_TOKENS = 64  # ~3 s of audio per request
QUICK_CONCURRENCY = [1, 8]
# The tiny model is all HiFi-GAN: one vocoder thread leaves the second core to a decode loop with
# almost nothing to do, so the quick run vocodes on two (XTTS_VOCODER_THREADS=2, as a CPU host would).
QUICK_VOCODER_THREADS = 2
QUICK_LENGTH_S = 30.0


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def key_lines(
    engine: dict[str, Any] | None, length: dict[str, Any] | None, gateway: dict[str, Any] | None
) -> list[str]:
    lines = []
    ratio = ttfa1 = ttfa8 = None
    if engine:
        by_c = {level["concurrency"]: level for level in engine["levels"]}
        if 8 in by_c:
            ratio = by_c[8].get("throughput_ratio")
            ttfa8 = by_c[8]["engine"]["ttfa_p50_ms"]
        if 1 in by_c:
            ttfa1 = by_c[1]["engine"]["ttfa_p50_ms"]
    verdict = "" if ratio is None else (" MET" if ratio >= 3.0 else " MISSED")
    lines.append(f"throughput ours/reference at concurrency 8 (tiny model, {QUICK_VOCODER_THREADS} vocoder threads): "
                 f"{_fmt(ratio, 'x')} (target >= 3x){verdict}")
    added = gateway.get("gateway_added_p50_ms") if gateway else None
    verdict = "" if added is None else (" MET" if added <= 5.0 else " MISSED")
    lines.append(f"gateway added latency p50: {_fmt(added, ' ms', 1)} (target <= 5 ms){verdict}")
    stream_ratio = None
    if length:
        row = next((r for r in length["rows"] if r["seconds"] == QUICK_LENGTH_S), None)
        stream_ratio = row.get("ours_stream_cost_ratio_wall") if row else None
    verdict = "" if stream_ratio is None else (" MET" if stream_ratio <= 1.2 else " MISSED")
    lines.append(f"streaming/non-streaming cost, 30 s utterance: {_fmt(stream_ratio, 'x')} (target <= 1.2x){verdict}")
    lines.append(f"TTFA p50 (ours): {_fmt(ttfa1, ' ms', 0)} at concurrency 1, {_fmt(ttfa8, ' ms', 0)} at concurrency 8")
    return lines


def run_quick(args, argv, build_model, record, out) -> int:
    from bench.engine_stage import engine_markdown, run_engine_stage
    from bench.length_stage import length_markdown, run_length_stage
    from bench.workload import tokens_for_seconds

    start = time.perf_counter()
    bm = build_model(args, max_audio_tokens=tokens_for_seconds(QUICK_LENGTH_S) + 8)
    engine = run_engine_stage(bm, concurrency=QUICK_CONCURRENCY, tokens=QUICK_TOKENS, max_batch_size=8,
                              vocoder_threads=QUICK_VOCODER_THREADS)
    record(out, "engine", args, argv, engine, engine_markdown(engine))
    length = run_length_stage(bm, seconds=[QUICK_LENGTH_S], include_reference=False)
    record(out, "length", args, argv, length, length_markdown(length))
    gateway = None
    if not args.skip_gateway:
        from bench.gateway_stage import gateway_markdown, run_gateway_stage

        try:
            gateway = run_gateway_stage(args, requests=20, tokens=16, cached_seconds=3.0)
            record(out, "gateway", args, argv, gateway, gateway_markdown(gateway))
        except StageUnavailable as exc:
            print(f"gateway stage skipped: {exc}", flush=True)
    lines = key_lines(engine, length, gateway)
    summary = "## Quick: key ratios\n\n" + "\n".join(f"- {line}" for line in lines)
    record(out, "quick", args, argv, {"lines": lines, "elapsed_s": round(time.perf_counter() - start, 1)}, summary)
    print()
    for line in lines:
        print(line)
    print(f"(quick run took {time.perf_counter() - start:.0f} s)")
    problems = [p for level in engine["levels"] for side in ("engine", "reference") if level.get(side)
                for p in level[side]["problems"]]
    return 1 if problems else 0
