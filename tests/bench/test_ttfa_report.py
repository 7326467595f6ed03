"""bench ttfa's arithmetic: stage marks placed on the client's clock, medians, ratios, Triton deltas, the CLI."""

from __future__ import annotations

import json

from bench.cli_args import build_parser
from bench.ttfa_paths import fresh_text, stage_lines, stats_delta_ms
from bench.ttfa_report import summarise, ttfa_markdown


def _gateway_row(sent: float, first_s: float, rid: str) -> dict:
    return {"first_s": first_s, "sent_monotonic": sent, "request_id": rid, "in_model_first_ms": 180.0,
            "triton_stats_ms": {"queue": 0.1, "compute_input": 0.1, "compute_infer": 0.6, "compute_output": 0.0}}


def test_stages_are_placed_on_the_clients_clock(tmp_path):
    log = tmp_path / "api.log"
    lines = [
        {"logger": "tts_gateway.http", "message": "request", "request_id": "a"},
        {"logger": "tts_gateway.stages", "message": "stages", "request_id": "a", "origin_monotonic": 100.002,
         "stages_ms": {"authed": 3.0, "prepared": 8.0, "engine_sent": 9.0, "engine_first": 209.0,
                       "first_written": 210.0}},
        {"logger": "tts_gateway.stages", "message": "stages", "request_id": "b", "origin_monotonic": 200.004,
         "stages_ms": {"authed": 5.0, "prepared": 10.0, "engine_sent": 11.0, "engine_first": 231.0,
                       "first_written": 232.0}},
    ]
    log.write_text("not json\n" + "\n".join(json.dumps(x) for x in lines) + "\n")
    found = stage_lines(log)
    assert set(found) == {"a", "b"}
    direct_row = {"in_model_first_ms": 190.0, "triton_stats_ms": _gateway_row(0, 0, "")["triton_stats_ms"]}
    raw = {"engine": [0.200, 0.220], "direct": [{"first_s": 0.205, **direct_row}, {"first_s": 0.215, **direct_row}],
           "gateway": [_gateway_row(100.0, 0.2125, "a"), _gateway_row(200.0, 0.2365, "b")]}
    result = summarise(raw, found)
    assert result["engine_first_ms"] == 210.0 and result["gateway_first_ms"] == 224.5
    assert result["gateway_over_engine"] == round(224.5 / 210.0, 3) and result["target_met"]
    stages = result["stages"]
    assert stages["missing_lines"] == 0
    assert stages["at_ms"]["middleware"] == 3.0  # (2 ms + 4 ms) / 2: client send to the server's clock start
    assert stages["at_ms"]["authed"] == 7.0
    assert stages["step_ms"]["engine_first"] == 210.0  # (200 + 220) / 2
    assert stages["at_ms"]["client_first"] == 224.5
    assert result["triton"]["gateway"]["in_model_first_ms"] == 180.0
    assert "engine gRPC call started" in ttfa_markdown({"rounds": 2, "engines": {"piper": result}})


def test_triton_stats_deltas_are_per_request():
    before = {p: (10, 1_000_000) for p in ("queue", "compute_input", "compute_infer", "compute_output")}
    after = {**before, "compute_infer": (12, 2_000_000)}
    delta = stats_delta_ms(before, after)
    assert delta["compute_infer"] == 0.5  # 1 ms over 2 requests
    assert delta["queue"] != delta["queue"]  # no request counted: NaN, not zero


def test_texts_are_fresh_and_the_stage_is_registered():
    assert len({fresh_text(i) for i in range(40)}) == 40
    args = build_parser().parse_args(["ttfa", "--engines", "piper", "--rounds", "3", "--api-env", "A=1"])
    assert args.engines == ["piper"] and args.rounds == 3 and args.api_env == ["A=1"]
