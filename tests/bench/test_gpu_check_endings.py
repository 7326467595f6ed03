"""Every way a GPU-check phase can end leaves results.json and summary.md with the figures measured so far
and the phase's error: done, cut by its deadline, an error after a few levels, the watchdog, SIGTERM and
SIGKILL (the wrapper's hard limit). Sides are paced by the test (no model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.gpu_check import GpuRecord, mark_ended, summary_markdown
from bench.gpu_stage import Watchdog, phase_realtime, run_phase
from tests.bench.paced_side import TOKENS, PacedSide

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120.0  # for a subprocess to reach a state: generous, the machine may be busy


def _record(out: Path) -> GpuRecord:
    result = {"machine": {"cpu": "paced side", "cores": 1}, "config": {}, "model": {"name": "paced"},
              "phases": {}, "figures": {}, "problems": [], "elapsed_s": 0.0}
    return GpuRecord(out, result, time.perf_counter())


def _realtime(record: GpuRecord, side: PacedSide, levels: list[int], timeout_s: float) -> dict[str, Any]:
    run_phase(record.phases, "realtime", timeout_s, time.perf_counter() + timeout_s, Watchdog(record.write),
              lambda d: phase_realtime(side, levels, TOKENS, d, record.progress("realtime")),  # type: ignore[arg-type]
              record.write, log=lambda *a, **k: None)
    return _files(record.out)


def _files(out: Path) -> dict[str, Any]:
    gpu = json.loads((out / "results.json").read_text())["stages"]["gpu"]
    return {"result": gpu, "phase": gpu["phases"]["realtime"], "summary": (out / "summary.md").read_text()}


def _levels_in_summary(summary: str, levels: list[int]) -> bool:
    return all(f"\n| {c} |" in summary for c in levels)


class FailsAtLevel(PacedSide):
    """Fast, until its statistics read fails before level `level` (as a device error out of the engine would)."""

    def __init__(self, level: int) -> None:
        super().__init__(capacity=50.0)
        self.level, self.reads = level, 0

    def stats_snapshot(self) -> dict[str, float]:
        self.reads += 1
        if self.reads == 2 * self.level - 1:  # two reads per level: the first one of level `level`
            raise RuntimeError("device lost")
        return super().stats_snapshot()


def test_a_phase_that_finishes_leaves_every_field(tmp_path):
    files = _realtime(_record(tmp_path), PacedSide(capacity=50.0), [1, 2], 60.0)
    phase = files["phase"]
    assert phase["status"] == "done" and phase["outcome"] == "all levels passed"
    assert phase["tokens_per_request"] == TOKENS
    assert files["result"]["figures"]["max_realtime_concurrency"] == 2
    assert f"Real-time search ({TOKENS} tokens per stream): all levels passed." in files["summary"]
    assert _levels_in_summary(files["summary"], [1, 2])


def test_realtime_failing_after_two_levels_keeps_them_and_shows_the_error(tmp_path):
    files = _realtime(_record(tmp_path), FailsAtLevel(3), [1, 2, 3, 4], 60.0)
    phase, summary = files["phase"], files["summary"]
    assert phase["status"] == "error" and phase["error"] == "RuntimeError: device lost"
    assert [r["concurrency"] for r in phase["levels"]] == [1, 2] and phase["tokens_per_request"] == TOKENS
    assert files["result"]["figures"]["max_realtime_concurrency"] == 2
    assert f"Real-time search ({TOKENS} tokens per stream): passed up to concurrency 2." in summary
    assert _levels_in_summary(summary, [1, 2]) and "- realtime: RuntimeError: device lost" in summary
    assert "| most concurrent streams all faster than real time | 2 |" in summary


def test_a_phase_cut_by_its_deadline_keeps_the_levels_before(tmp_path):
    # Level 2 runs four times slower than real time: its streams need about 4 s, the deadline comes at 3 s.
    class SlowFromLevelTwo(PacedSide):
        def stream(self, request, on_tokens=None):
            self.capacity = 50.0 if self.closed == 0 else 0.5
            yield from super().stream(request, on_tokens)

    files = _realtime(_record(tmp_path), SlowFromLevelTwo(capacity=50.0), [1, 2, 4], 3.0)
    phase = files["phase"]
    assert phase["status"] == "cut" and phase["outcome"] == "cut by the deadline at concurrency 2"
    assert [(r["concurrency"], r["realtime"]) for r in phase["levels"]] == [(1, True), (2, None)]
    assert f"Real-time search ({TOKENS} tokens per stream): cut by the deadline at concurrency 2." in files["summary"]


def test_a_summary_that_cannot_be_drawn_still_names_the_phases_and_errors():
    result = {"phases": {"setup": {"status": "done", "seconds": 1.0},
                         "realtime": {"status": "error", "error": "ValueError: x", "levels": ["not a row"]}}}
    text = summary_markdown(result)
    assert text.startswith("## GPU check") and "could not be drawn" in text
    assert "- realtime error (– s): ValueError: x" in text and "- setup done (1.0 s)" in text


def _stuck(out: Path, timeout_s: float, grace_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.stuck_check", str(out), str(timeout_s), str(grace_s)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_levels(proc: subprocess.Popen, out: Path, n: int) -> None:
    """Until results.json shows the realtime phase running with `n` levels measured."""
    until = time.monotonic() + WAIT_S
    while time.monotonic() < until:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            phase = _files(out)["phase"]
        except (OSError, KeyError, ValueError):
            phase = {}
        if phase.get("status") == "running" and len(phase.get("levels") or []) >= n:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the stuck run did not measure {n} levels within {WAIT_S} s")


def _assert_ended_with_levels_kept(out: Path, status: str, error_part: str) -> None:
    files = _files(out)
    phase, summary = files["phase"], files["summary"]
    assert phase["status"] == status and error_part in phase["error"], phase
    assert [r["concurrency"] for r in phase["levels"]] == [1, 2] and phase["tokens_per_request"] == TOKENS
    assert files["result"]["figures"]["max_realtime_concurrency"] == 2
    assert _levels_in_summary(summary, [1, 2]) and f"- realtime: {phase['error']}" in summary


def test_sigterm_marks_the_running_phase_killed_and_writes(tmp_path):
    proc = _stuck(tmp_path, 600.0, 600.0)
    _wait_for_levels(proc, tmp_path, 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=WAIT_S) == 128 + signal.SIGTERM
    _assert_ended_with_levels_kept(tmp_path, "killed", "process ended by SIGTERM")


def test_sigkill_leaves_the_phase_running_on_disk_and_mark_ended_closes_it(tmp_path):
    proc = _stuck(tmp_path, 600.0, 600.0)
    _wait_for_levels(proc, tmp_path, 2)
    proc.kill()
    assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL
    assert _files(tmp_path)["phase"]["status"] == "running"  # as the last write left it: levels 1 and 2 on disk
    run = subprocess.run([sys.executable, "-m", "bench.gpu_check", "ended", str(tmp_path), "process killed by SIGKILL"],
                         cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S)
    assert run.returncode == 0 and "marked the running phase" in run.stdout, run.stdout + run.stderr
    _assert_ended_with_levels_kept(tmp_path, "killed", "process killed by SIGKILL")
    assert not mark_ended(tmp_path, "again")  # nothing is left running


def test_the_watchdog_ends_a_stuck_phase_and_writes(tmp_path):
    # The deadline gives levels 1 and 2 (a tenth of a second of work) room on a slow machine.
    proc = _stuck(tmp_path, 8.0, 0.5)
    assert proc.wait(timeout=WAIT_S) == 3, proc.stdout.read() if proc.stdout else ""
    _assert_ended_with_levels_kept(tmp_path, "timed_out", "past its deadline: process ended")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no half-written file left beside
