"""The benchmark harness on the tiny model at tiny sizes: result structure and exact token counts (no timings)."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main
from bench.driver import expected_samples
from bench.metrics import RequestRecord, percentile
from bench.quick import key_lines

TOKENS = 8


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    rc = main(["engine", "--model", "tiny", "--concurrency", "1,2", "--tokens", str(TOKENS), "--out", str(out)])
    return rc, out


def test_engine_stage_records_both_sides_with_exact_token_counts(engine_run):
    rc, out = engine_run
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    result = data["stages"]["engine"]
    assert result["machine"]["command"].startswith("python -m bench engine")
    assert result["machine"]["torch"].startswith("2.")
    assert [level["concurrency"] for level in result["levels"]] == [1, 2]
    for level in result["levels"]:
        c = level["concurrency"]
        for side in ("reference", "engine"):
            summary = level[side]
            assert summary["requests"] == c and summary["errors"] == 0
            assert summary["problems"] == []
            assert summary["tokens_requested"] == [TOKENS] * c
            assert summary["samples"] == [expected_samples(TOKENS)] * c
            assert summary["ttfa_p50_ms"] > 0 and summary["audio_s_per_wall_s"] > 0
        # The reference's own generator counted every token; the engine's counters add up to the request total.
        assert level["reference"]["tokens_generated"] == [TOKENS] * c
        assert level["engine"]["engine_tokens"] == TOKENS * c
        assert level["engine"]["avg_batch"] >= 1.0
        assert level["throughput_ratio"] > 0
    summary_md = (out / "summary.md").read_text()
    assert "Engine vs reference" in summary_md and "| 2 |" in summary_md


def test_plot_writes_pngs(engine_run):
    _, out = engine_run
    assert main(["plot", str(out)]) == 0
    for name in ("engine-throughput.png", "engine-ttfa.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_length_stage_compares_streaming_with_whole(tmp_path):
    assert main(["length", "--model", "tiny", "--seconds", "0.5", "--out", str(tmp_path)]) == 0
    row = json.loads((tmp_path / "results.json").read_text())["stages"]["length"]["rows"][0]
    for key in ("ours_streaming", "ours_non_streaming", "reference_streaming", "reference_non_streaming"):
        assert row[key]["tokens"] == 11 and row[key]["problems"] == [], key
    assert row["ours_stream_cost_ratio_wall"] > 0 and row["reference_stream_cost_ratio_wall"] > 0


def test_wrong_token_count_is_reported():
    from bench.driver import verify_tokens

    record = RequestRecord(0, tokens_requested=10, submitted=0.0, first_audio=0.1, finished=0.2,
                           samples=expected_samples(9), tokens_generated=9)
    problems = verify_tokens([record])
    assert len(problems) == 2 and "generated 9 tokens" in problems[0]


def test_stall_detection_and_percentiles():
    smooth = RequestRecord(0, 8, 0.0, first_audio=1.0, finished=2.0, chunk_arrivals=[(1.0, 24000), (1.9, 48000)])
    late = RequestRecord(1, 8, 0.0, first_audio=1.0, finished=3.0, chunk_arrivals=[(1.0, 2400), (2.0, 4800)])
    assert not smooth.stalls and late.stalls
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([], 50) is None


def test_quick_lines_name_each_target():
    engine = {"levels": [
        {"concurrency": 1, "engine": {"ttfa_p50_ms": 100.0}},
        {"concurrency": 8, "engine": {"ttfa_p50_ms": 300.0}, "throughput_ratio": 3.5},
    ]}
    length = {"rows": [{"seconds": 30.0, "ours_stream_cost_ratio_wall": 1.3}]}
    lines = key_lines(engine, length, {"gateway_added_p50_ms": 2.0})
    assert lines[0].endswith("(target >= 3x) MET") and "3.50x" in lines[0]
    assert "2.0 ms" in lines[1] and lines[1].endswith("MET")
    assert lines[2].endswith("MISSED")
    assert "100 ms at concurrency 1" in lines[3]
