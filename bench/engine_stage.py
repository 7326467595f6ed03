"""`bench engine`: our engine against the reference at rising concurrency, same weights, same requests, same run."""

from __future__ import annotations

import gc
import time
from typing import Any

from bench.driver import run_concurrent, verify_tokens
from bench.engine_side import EngineSide, average_batch, average_vocode_batch, tokens_between
from bench.metrics import summarise
from bench.models import BenchModel
from bench.reference import ReferenceServer
from bench.results import md_table
from bench.workload import make_requests

DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)


def _warm_up(side, bm: BenchModel) -> None:
    # First calls pay for lazy initialisation (allocator, kernels): keep them out of the numbers.
    run_concurrent(side, make_requests(1, 8, seed=99), 1)


def run_level(side, concurrency: int, tokens: int, rounds: int, seed: int) -> dict[str, Any]:
    return run_paired_level({"side": side}, concurrency, tokens, rounds, seed)["side"]


def run_paired_level(
    sides: dict[str, Any], concurrency: int, tokens: int, rounds: int, seed: int, repeats: int = 1
) -> dict[str, dict[str, Any]]:
    """Each side streams the same request list `repeats` times, sides alternating order between repeats
    (the machine's background load falls on both alike); records are pooled per side."""
    requests = make_requests(concurrency * rounds, tokens, seed=seed)
    pooled: dict[str, tuple[list, float, list[str], dict | None, dict | None]] = {}
    names = list(sides)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            side = sides[name]
            before = side.stats_snapshot() if hasattr(side, "stats_snapshot") else None
            gc.collect()
            records, wall = run_concurrent(side, requests, concurrency)
            after = side.stats_snapshot() if hasattr(side, "stats_snapshot") else None
            problems = verify_tokens(records)
            if before is not None:
                counted, asked = tokens_between(before, after), sum(q.tokens for q in requests)
                if counted != asked:
                    problems.append(f"engine generated {counted} tokens in one pass, {asked} were asked")
            old = pooled.get(name)
            if old is None:
                pooled[name] = (records, wall, problems, before, after)
            else:
                pooled[name] = (old[0] + records, old[1] + wall, old[2] + problems, old[3], after)
    out = {}
    for name, (records, wall, problems, before, after) in pooled.items():
        extra: dict[str, Any] = {"concurrency": concurrency, "repeats": repeats, "problems": problems}
        if before is not None:
            extra["avg_batch"] = average_batch(before, after)
            extra["avg_vocode_batch"] = average_vocode_batch(before, after)
            extra["engine_tokens"] = tokens_between(before, after)
        out[name] = summarise(records, wall, extra)
    return out


def run_engine_stage(
    bm: BenchModel,
    *,
    concurrency: list[int],
    tokens: int,
    rounds: int = 1,
    reference_max_concurrency: int = 16,
    max_batch_size: int = 64,
    seed: int = 1234,
    repeats: int = 1,
    vocoder_threads: int = 1,
    vocode_batch: int | None = None,
    paired_vocode_batch: int | None = None,
    log=print,
) -> dict[str, Any]:
    """Both sides at each concurrency level (reference first, then ours, on the same request list).

    `paired_vocode_batch` adds a second engine side on the same weights whose vocoder thread batches at
    most that many windows per call ("engine_vbN"), alternating with ours on the same requests.
    """
    reference = ReferenceServer(bm)
    engine = EngineSide(bm, max_batch_size=max_batch_size, vocoder_threads=vocoder_threads, vocode_batch=vocode_batch)
    paired_name = f"engine_vb{paired_vocode_batch}" if paired_vocode_batch is not None else None
    paired = (EngineSide(bm, max_batch_size=max_batch_size, vocoder_threads=vocoder_threads,
                         vocode_batch=paired_vocode_batch) if paired_vocode_batch is not None else None)
    try:
        _warm_up(reference, bm)
        _warm_up(engine, bm)
        if paired is not None:
            _warm_up(paired, bm)
        levels = []
        for c in concurrency:
            level: dict[str, Any] = {"concurrency": c, "reference": None}
            sides = {"reference": reference, "engine": engine} if c <= reference_max_concurrency else {"engine": engine}
            if paired is not None and paired_name is not None:
                sides[paired_name] = paired
            t = time.perf_counter()
            level.update(run_paired_level(sides, c, tokens, rounds, seed, repeats))
            for name in sides:
                log(f"  c={c:<3} {name:<9} {_line(level[name])}")
            log(f"        ({time.perf_counter() - t:.1f}s)")
            ref, ours = level["reference"], level["engine"]
            if ref and ref["audio_s_per_wall_s"] and ours["audio_s_per_wall_s"]:
                level["throughput_ratio"] = round(ours["audio_s_per_wall_s"] / ref["audio_s_per_wall_s"], 3)
            if paired_name is not None:
                level["paired"] = paired_name
                level["vs_paired"] = _ratios(ours, level[paired_name])
            levels.append(level)
    finally:
        engine.close()
        if paired is not None:
            paired.close()
    return {
        "model": bm.describe(),
        "tokens_per_request": tokens,
        "rounds": rounds,
        "repeats": repeats,
        "vocoder_threads": vocoder_threads,
        "vocode_batch": engine.engine.worker.batch if engine.engine.worker is not None else None,
        "paired_vocode_batch": paired_vocode_batch,
        "reference_max_concurrency": reference_max_concurrency,
        "max_batch_size": max_batch_size,
        "levels": levels,
    }


def _ratios(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, float | None]:
    """Ours over the paired side: throughput (higher is better), TTFA and RTF medians (lower is better)."""

    def ratio(key: str) -> float | None:
        a, b = ours.get(key), other.get(key)
        return round(a / b, 3) if a and b else None

    return {key: ratio(key) for key in ("audio_s_per_wall_s", "ttfa_p50_ms", "ttfa_p95_ms", "rtf_p50")}


def _line(s: dict[str, Any]) -> str:
    avg = f" batch {s['avg_batch']}" if s.get("avg_batch") is not None else ""
    if s.get("avg_vocode_batch") is not None:
        avg += f" vocode batch {s['avg_vocode_batch']}"
    bad = f" PROBLEMS {len(s['problems'])}" if s.get("problems") else ""
    return (
        f"{s['audio_s_per_wall_s']} audio-s/s, ttfa p50 {s['ttfa_p50_ms']} ms p95 {s['ttfa_p95_ms']} ms, "
        f"rtf p50 {s['rtf_p50']}{avg}{bad}"
    )


def engine_markdown(result: dict[str, Any], title: str = "Engine vs reference (in process)") -> str:
    m = result["model"]
    rows = []
    for level in result["levels"]:
        ref, ours = level["reference"] or {}, level["engine"]
        rows.append([
            level["concurrency"],
            ref.get("audio_s_per_wall_s"), ours["audio_s_per_wall_s"], level.get("throughput_ratio"),
            ref.get("ttfa_p50_ms"), ours["ttfa_p50_ms"], ref.get("ttfa_p95_ms"), ours["ttfa_p95_ms"],
            ref.get("rtf_p50"), ours["rtf_p50"], ours.get("avg_batch"), ours["tokens_per_s"],
        ])
    table = md_table(
        ["conc.", "ref audio-s/s", "ours audio-s/s", "ours/ref", "ref TTFA p50 ms", "ours TTFA p50 ms",
         "ref TTFA p95 ms", "ours TTFA p95 ms", "ref RTF p50", "ours RTF p50", "ours avg batch", "ours tokens/s"],
        rows,
    )
    paired = _paired_markdown(result)
    return (
        f"## {title}\n\nModel `{m['name']}` ({m['params'] / 1e6:.1f} M params, "
        f"GPT {m['gpt_layers']}x{m['gpt_model_dim']}, "
        f"{m['device']} {m['dtype']}), {result['tokens_per_request']} tokens per request "
        f"({result['tokens_per_request'] / 21.53:.2f} s of audio), {result['rounds']} request(s) per client, "
        f"{result.get('repeats', 1)} alternating pass(es) per side pooled.\n\n{table}{paired}"
    )


def _paired_markdown(result: dict[str, Any]) -> str:
    """Ours against the paired engine side (vocoding batched vs not), when the run had one."""
    if result.get("paired_vocode_batch") is None:
        return ""
    name = f"engine_vb{result['paired_vocode_batch']}"
    rows = []
    for level in result["levels"]:
        ours, other, r = level["engine"], level[name], level["vs_paired"]
        rows.append([
            level["concurrency"], ours["audio_s_per_wall_s"], other["audio_s_per_wall_s"], r["audio_s_per_wall_s"],
            ours["ttfa_p50_ms"], other["ttfa_p50_ms"], r["ttfa_p50_ms"], ours["rtf_p50"], other["rtf_p50"],
            r["rtf_p50"], ours.get("avg_vocode_batch"), other.get("avg_vocode_batch"),
        ])
    ours_b, other_b = result.get("vocode_batch"), result["paired_vocode_batch"]
    table = md_table(
        ["conc.", f"vb{ours_b} audio-s/s", f"vb{other_b} audio-s/s", "ratio", f"vb{ours_b} TTFA p50 ms",
         f"vb{other_b} TTFA p50 ms", "ratio", f"vb{ours_b} RTF p50", f"vb{other_b} RTF p50", "ratio",
         f"vb{ours_b} windows/call", f"vb{other_b} windows/call"],
        rows,
    )
    return (f"\n\n### Vocoding batched across requests: XTTS_VOCODE_BATCH={ours_b} vs {other_b}\n\n"
            f"Both engines on the same weights and requests, passes alternating; ratios are "
            f"vb{ours_b} / vb{other_b} (throughput: higher is better; TTFA, RTF: lower is better).\n\n{table}"
    )
