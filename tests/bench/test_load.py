"""A short `bench load` in the unit suite: 50 concurrent streams for a few seconds through the real gateway
and Triton (piper), with the same invariants as the long run (`make load-test`): no error, usage records
equal requests, no leaked tasks, files or streams."""

from __future__ import annotations

from argparse import Namespace

from bench.load_stage import run_load_stage


def test_short_load_run_has_no_errors_and_leaks_nothing():
    result = run_load_stage(Namespace(engine="piper", streams=50, seconds=5.0, threads=1), log=lambda *_: None)
    assert result["problems"] == [], result
    assert result["ok"] == result["requests"] == result["usage_records"] >= 50
    assert result["gateway_after"]["active_streams"] == 0
