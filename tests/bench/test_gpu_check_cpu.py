"""The one-go GPU check (bench/gpu_check.sh) end to end on the CPU with the tiny model: every figure is
present, numeric and consistent with the measurements it came from (no timing thresholds); and a
check killed mid-phase still leaves its figures and says which phase was killed."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.driver import expected_samples
from bench.workload import SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[2]
TOKENS = 8
LEVELS = [1, 2]
TTFA_REQUESTS = 2
CONCURRENCY = 2


@pytest.fixture(scope="module")
def gpu_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--python", sys.executable, "--out", str(out), "--",
         "--model", "tiny", "--device", "cpu", "--dtype", "fp32", "--levels", ",".join(map(str, LEVELS)),
         "--ttfa-requests", str(TTFA_REQUESTS), "--ttfa-tokens", str(TOKENS), "--tokens", str(TOKENS),
         "--throughput-concurrency", str(CONCURRENCY)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    return proc, out


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _result(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["stages"]["gpu"]


def test_every_phase_runs_and_every_figure_is_a_number(gpu_check):
    proc, out = gpu_check
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = _result(out)
    assert [(name, phase["status"]) for name, phase in result["phases"].items()] == [
        ("setup", "done"), ("ttfa", "done"), ("realtime", "done"), ("throughput", "done")]
    assert result["problems"] == []
    figures = result["figures"]
    for key in ("ttfa_median_ms_engine", "ttfa_median_ms_reference", "throughput_engine_audio_s_per_s",
                "throughput_reference_audio_s_per_s", "throughput_ratio"):
        assert _number(figures[key]) and figures[key] > 0, key
    assert isinstance(figures["max_realtime_concurrency"], int)
    assert figures["throughput_concurrency"] == CONCURRENCY
    machine = result["machine"]
    assert machine["torch"].startswith("2.") and machine["coqui-tts"] == "0.28.0"
    assert machine["cuda_available"] in (True, False) and "gpu" not in machine  # a CPU run names no GPU
    assert result["model"]["name"] == "tiny" and "random" in result["model"]["weights"]
    assert (out / "gpu-check.log").read_text().count("python -m bench gpu") >= 1
    assert "torch" in (out / "environment.txt").read_text()


def test_time_to_first_audio_is_the_median_of_the_recorded_requests(gpu_check):
    ttfa = _result(gpu_check[1])["phases"]["ttfa"]
    for side in ("engine", "reference"):
        values = ttfa[side]["ttfa_ms"]
        assert len(values) == TTFA_REQUESTS and all(_number(v) and v > 0 for v in values)
        assert ttfa[side]["ttfa_median_ms"] == pytest.approx(statistics.median(values), abs=0.02)
        assert ttfa[side]["rtf_median"] > 0


def test_realtime_result_is_the_last_level_measured_below_one(gpu_check):
    realtime = _result(gpu_check[1])["phases"]["realtime"]
    rows, best = realtime["levels"], realtime["max_realtime_concurrency"]
    assert [r["concurrency"] for r in rows] == LEVELS[: len(rows)] and rows
    for row in rows:
        assert row["requests"] == row["concurrency"] and row["cut"] == 0
        assert _number(row["rtf_max"]) and row["rtf_max"] >= row["rtf_p50"] > 0
        assert row["realtime"] == (row["rtf_max"] < 1.0 and row["completed"] == row["concurrency"])
    passed = [r["concurrency"] for r in rows if r["realtime"]]
    # Every level up to the answer stayed below 1; the search stopped at the first level that did not.
    assert passed == [c for c in LEVELS if c <= best][: len(passed)] and best == (passed[-1] if passed else 0)
    if best < LEVELS[-1]:
        assert rows[-1]["realtime"] is False and rows[-1]["concurrency"] == LEVELS[len(passed)]
        assert realtime["outcome"] == f"failed at concurrency {rows[-1]['concurrency']}"
    else:
        assert realtime["outcome"] == "all levels passed"


def test_throughput_ratio_divides_the_passes_it_reports(gpu_check):
    tp = _result(gpu_check[1])["phases"]["throughput"]
    assert [p["side"] for p in tp["passes"]] in (["engine", "reference", "engine"], ["engine", "reference"])
    audio = CONCURRENCY * expected_samples(TOKENS) / SAMPLE_RATE
    for p in tp["passes"]:
        assert p["completed"] == CONCURRENCY and p["cut"] == 0 and p["errors"] == 0
        assert p["audio_s"] == pytest.approx(audio, abs=1e-3)
        assert p["audio_s_per_wall_s"] == pytest.approx(p["audio_s"] / p["wall_s"], rel=1e-3)
    ours = statistics.mean(p["audio_s_per_wall_s"] for p in tp["passes"] if p["side"] == "engine")
    assert tp["engine_audio_s_per_wall_s"] == pytest.approx(ours, rel=1e-3)
    assert tp["throughput_ratio"] == pytest.approx(ours / tp["reference_audio_s_per_wall_s"], rel=2e-3)
    assert tp["reference_complete"] is True


def test_summary_shows_the_figures(gpu_check):
    out = gpu_check[1]
    figures = _result(out)["figures"]
    summary = (out / "summary.md").read_text()
    assert summary.startswith("## GPU check")
    assert "time to first audio, concurrency 1, median ms" in summary
    assert f"| most concurrent streams all faster than real time | {figures['max_realtime_concurrency']} |" in summary
    assert f"audio s per s at concurrency {CONCURRENCY}" in summary


def _bench_process(out: Path) -> int | None:
    """The pid of the `python -m bench gpu` the wrapper started for `out`, once it runs."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"bench" in args and b"gpu" in args and str(out).encode() in args and b"timeout" not in args[0]:
                return int(entry.name)
    return None


def test_a_check_killed_mid_phase_keeps_its_figures_and_names_the_phase(tmp_path):
    # SIGKILL, as the wrapper's hard limit ends a process that ignored its stop: no last write from it.
    wrapper = subprocess.Popen(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--python", sys.executable, "--out", str(tmp_path), "--",
         "--model", "tiny", "--device", "cpu", "--dtype", "fp32", "--ttfa-requests", "200", "--ttfa-tokens", "8",
         "--ttfa-timeout", "600"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600  # the tiny model's setup can take minutes on a busy machine
        while True:
            assert wrapper.poll() is None, wrapper.stdout.read() if wrapper.stdout else ""
            assert time.monotonic() < deadline, "the check never measured a time to first audio"
            try:
                ttfa = _result(tmp_path)["phases"].get("ttfa") or {}
            except (OSError, KeyError, ValueError):
                ttfa = {}
            if ttfa.get("status") == "running" and (ttfa.get("engine") or {}).get("requests"):
                break
            time.sleep(0.05)
        pid = _bench_process(tmp_path)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        output, _ = wrapper.communicate(timeout=300)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert wrapper.returncode == 137, output[-3000:]
    result = _result(tmp_path)
    assert result["phases"]["setup"]["status"] == "done"
    ttfa = result["phases"]["ttfa"]
    assert ttfa["status"] == "killed" and "SIGKILL" in ttfa["error"], ttfa
    assert ttfa["engine"]["requests"] >= 1 and result["figures"]["ttfa_median_ms_engine"] > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "ttfa killed" in summary and f"- ttfa: {ttfa['error']}" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| time to first audio"))
    assert row.split("|")[2].strip() not in ("", "–")  # the engine's median, measured before the kill
