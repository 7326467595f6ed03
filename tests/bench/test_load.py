"""A short `bench load` in the unit suite: 50 concurrent streams for a few seconds through the real gateway
and Triton (piper), with the same invariants as the long run (`make load-test`): no error but admission
refusals, usage records equal requests served, refusals counted, no leaked tasks, files, streams or backlog."""

from __future__ import annotations

from argparse import Namespace

from bench.load_stage import run_load_stage


def test_short_load_run_has_no_errors_and_leaks_nothing():
    result = run_load_stage(Namespace(engine="piper", streams=50, seconds=5.0, threads=1, admission_max_wait=None),
                            log=lambda *_: None)
    assert result["problems"] == [], result
    assert result["ok"] + result["shed"] == result["requests"] >= 50
    assert result["ok"] == result["usage_records"] > 0
    assert result["gateway_after"]["active_streams"] == 0 and result["gateway_after"]["backlog_chars"] == 0


def test_without_admission_every_request_is_served():
    result = run_load_stage(Namespace(engine="piper", streams=20, seconds=3.0, threads=1, admission_max_wait=0.0),
                            log=lambda *_: None)
    assert result["problems"] == [], result
    assert result["ok"] == result["requests"] == result["usage_records"] >= 20 and result["shed"] == 0
