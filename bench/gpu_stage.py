"""`bench gpu`: the one-go GPU check, in phases that each have a deadline, results written after each.

Phases (engine = our `XttsEngine`, reference = Coqui's `inference_stream` behind a lock, one model):
  ttfa        time to first audio at concurrency 1, requests alternating between the sides, medians;
  realtime    the engine at concurrency 1, 2, 4, ...: the largest level whose streams *all* finish
              faster than real time (RTF < 1), stopping at the first level where one does not;
  throughput  audio seconds per wall second at concurrency 32, engine / reference / engine passes
              on the same request list (the engine's figure is the mean of its two passes).

A phase that reaches its deadline stops its clients (`bench.deadline_driver`) and records what was
delivered, marked `cut`; a phase that fails records its error and the next phase still runs. A
watchdog ends the process if a phase hangs past its deadline (a stuck device call), after writing
what was recorded so far.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.deadline_driver import QueuedReference, TimedRecord, run_until
from bench.driver import Side, verify_tokens
from bench.engine_side import EngineSide, average_batch
from bench.metrics import percentile
from bench.workload import make_requests

WATCHDOG_GRACE_S = 45.0  # past a phase's deadline, one in-flight chunk at most should still arrive


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def _completed(timed: list[TimedRecord]) -> list[TimedRecord]:
    return [t for t in timed if not t.cut and t.record.error is None and t.record.finished is not None]


def pass_summary(timed: list[TimedRecord], wall: float) -> dict[str, Any]:
    """One side's pass: delivered audio (cut streams included) per wall second, RTF and TTFA of finished streams."""
    done = _completed(timed)
    rtfs = [t.record.rtf for t in done if t.record.rtf is not None]
    ttfas = [t.record.ttfa for t in timed if t.record.ttfa is not None]
    audio = sum(t.record.audio_seconds for t in timed)
    return {
        "requests": len(timed),
        "completed": len(done),
        "cut": sum(1 for t in timed if t.cut),
        "errors": sum(1 for t in timed if t.record.error),
        "wall_s": _round(wall),
        "audio_s": _round(audio),
        "audio_s_per_wall_s": _round(audio / wall if wall > 0 else None),
        "rtf_max": _round(max(rtfs) if rtfs else None),
        "rtf_p50": _round(percentile(rtfs, 50)),
        "rtf_p95": _round(percentile(rtfs, 95)),
        "ttfa_p50_ms": _ms(percentile(ttfas, 50)),
        "ttfa_p95_ms": _ms(percentile(ttfas, 95)),
        "streams_without_stall": sum(1 for t in done if not t.record.stalls),
        "problems": verify_tokens([t.record for t in timed if not t.cut]),
    }


Progress = Callable[[dict[str, Any]], None]


def _no_progress(partial: dict[str, Any]) -> None:
    pass


def phase_ttfa(engine: Side, reference: Side, requests: int, tokens: int, deadline: float,
               progress: Progress = _no_progress) -> dict[str, Any]:
    """Sequential requests, engine and reference alternating (who goes first alternates too).

    `progress` gets the figures so far after each request."""
    ttfa: dict[str, list[float]] = {"engine": [], "reference": []}
    rtf: dict[str, list[float]] = {"engine": [], "reference": []}
    problems: list[str] = []

    def figures() -> dict[str, Any]:
        out: dict[str, Any] = {"tokens_per_request": tokens, "problems": list(problems)}
        for name in ("engine", "reference"):
            out[name] = {
                "requests": len(ttfa[name]),
                "ttfa_ms": [_ms(v) for v in ttfa[name]],
                "ttfa_median_ms": _ms(statistics.median(ttfa[name])) if ttfa[name] else None,
                "rtf_median": _round(statistics.median(rtf[name])) if rtf[name] else None,
            }
        return out

    cut = False
    for i, request in enumerate(make_requests(requests, tokens, seed=2000)):
        for side in (engine, reference) if i % 2 == 0 else (reference, engine):
            (timed,), _ = run_until(side, [request], 1, deadline)
            if timed.cut:
                cut = True
                break
            r = timed.record
            problems.extend(f"{side.name}: {p}" for p in verify_tokens([r]))
            if r.ttfa is not None and r.error is None:
                ttfa[side.name].append(r.ttfa)
            if r.rtf is not None:
                rtf[side.name].append(r.rtf)
            progress(figures())
        if cut:
            break
    return {"status": "cut" if cut else "done", **figures()}


def phase_realtime(
    engine: EngineSide, levels: list[int], tokens: int, deadline: float, progress: Progress = _no_progress
) -> dict[str, Any]:
    """Levels in order until one has a stream at RTF >= 1 (or an error, or the deadline).

    `progress` gets every field of the result as it stands after each level, so a run that stops
    later (an error, a kill) keeps the levels measured."""
    rows: list[dict[str, Any]] = []
    best = 0
    outcome = "all levels passed"

    def result(outcome: str) -> dict[str, Any]:
        return {
            "tokens_per_request": tokens,
            "levels": rows,
            "max_realtime_concurrency": best,
            "outcome": outcome,
            "problems": [p for row in rows for p in row["problems"]],
        }

    for c in levels:
        before = engine.stats_snapshot()
        timed, wall = run_until(engine, make_requests(c, tokens, seed=3000 + c), c, deadline)
        row = {"concurrency": c, **pass_summary(timed, wall),
               "avg_batch": average_batch(before, engine.stats_snapshot())}
        if row["cut"]:
            row["realtime"] = None
            rows.append(row)
            outcome = f"cut by the deadline at concurrency {c}"
            break
        row["realtime"] = bool(row["completed"] == c and row["rtf_max"] is not None and row["rtf_max"] < 1.0)
        rows.append(row)
        if not row["realtime"]:
            outcome = f"failed at concurrency {c}" + (f" ({row['errors']} errors)" if row["errors"] else "")
            break
        best = c
        progress(result(f"passed up to concurrency {c}"))
    return {"status": "cut" if outcome.startswith("cut") else "done", **result(outcome)}


def phase_throughput(
    engine: Side, reference: QueuedReference, concurrency: int, tokens: int, deadline: float,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Engine, reference, engine on one request list; the reference gets what the second engine pass leaves."""
    requests = make_requests(concurrency, tokens, seed=4000)
    passes: list[dict[str, Any]] = []

    def one(side: Side, until: float) -> dict[str, Any]:
        timed, wall = run_until(side, requests, concurrency, until)
        row = {"side": side.name, **pass_summary(timed, wall)}
        passes.append(row)
        progress({"concurrency": concurrency, "tokens_per_request": tokens, "passes": passes})
        return row

    first = one(engine, deadline)
    reserve = 1.5 * (first["wall_s"] or 0.0) + 5.0  # room for the engine's second pass
    one(reference, max(time.perf_counter() + 1.0, deadline - reserve))
    if time.perf_counter() + reserve < deadline:
        one(engine, deadline)
    ours = [p["audio_s_per_wall_s"] for p in passes if p["side"] == "engine" and p["audio_s_per_wall_s"]]
    ref = next(p for p in passes if p["side"] == "reference")
    engine_rate = statistics.mean(ours) if ours else None
    ratio = engine_rate / ref["audio_s_per_wall_s"] if engine_rate and ref["audio_s_per_wall_s"] else None
    return {
        "status": "cut" if any(p["cut"] for p in passes) else "done",
        "concurrency": concurrency,
        "tokens_per_request": tokens,
        "passes": passes,
        "engine_audio_s_per_wall_s": _round(engine_rate),
        "reference_audio_s_per_wall_s": ref["audio_s_per_wall_s"],
        "throughput_ratio": _round(ratio, 3),
        "reference_complete": ref["cut"] == 0 and ref["completed"] == concurrency,
        "problems": [f"{p['side']}: {q}" for p in passes for q in p["problems"]],
    }


class Watchdog:
    """Writes the results so far and ends the process if a phase outlives its deadline by WATCHDOG_GRACE_S."""

    def __init__(self, write: Callable[[], None]) -> None:
        self.write = write
        self.timer: threading.Timer | None = None

    def arm(self, phase: dict[str, Any], deadline: float) -> None:
        def fire() -> None:
            phase["status"] = "timed_out"
            phase["error"] = f"still running {WATCHDOG_GRACE_S:.0f} s past its deadline: process ended"
            try:
                self.write()
            finally:
                os._exit(3)

        self.disarm()
        self.timer = threading.Timer(max(0.0, deadline - time.perf_counter()) + WATCHDOG_GRACE_S, fire)
        self.timer.daemon = True
        self.timer.start()

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def run_phase(
    phases: dict[str, Any], name: str, timeout_s: float, end: float, watchdog: Watchdog,
    body: Callable[[float], dict[str, Any]], write: Callable[[], None], log=print,
) -> None:
    """Run one phase with deadline min(now + timeout_s, end); record status, seconds and any error; write."""
    start = time.perf_counter()
    deadline = min(start + timeout_s, end)
    phase: dict[str, Any] = {"status": "running", "timeout_s": round(deadline - start, 1)}
    phases[name] = phase
    if deadline - start < 1.0:
        phase.update(status="skipped", error="no time left in the budget")
        write()
        return
    write()  # on disk as running: a process killed in this phase leaves it marked so
    watchdog.arm(phase, deadline)
    log(f"== {name} (deadline in {deadline - start:.0f} s)", flush=True)
    try:
        phase.update(body(deadline))
    except Exception as exc:  # noqa: BLE001 - a failed phase is recorded; the others still run
        phase.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
    finally:
        watchdog.disarm()
    phase["seconds"] = round(time.perf_counter() - start, 2)
    log(f"   {name}: {phase['status']} in {phase['seconds']} s", flush=True)
    write()
