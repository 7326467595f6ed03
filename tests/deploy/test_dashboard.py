"""deploy/grafana/tts-gateway-dashboard.json: a real dashboard with a panel for each capacity metric."""

from __future__ import annotations

import json
import re

import pytest

from .helpers import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "tts-gateway-dashboard.json"


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return [p for p in out if p.get("type") != "row"]


def _exprs(panel: dict) -> list[str]:
    return [t["expr"] for t in panel.get("targets", [])]


def _panel_with(dashboard: dict, pattern: str) -> dict:
    regex = re.compile(pattern)
    matches = [p for p in _panels(dashboard) if any(regex.search(e) for e in _exprs(p))]
    assert matches, f"no panel queries {pattern!r}"
    return matches[0]


def test_dashboard_shape(dashboard: dict) -> None:
    assert dashboard["title"] and dashboard["uid"] == "tts-gateway-capacity"
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    panels = _panels(dashboard)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap"}
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("per-model request rate", r"sum by \(model\) \(rate\(nv_inference_request_success"),
        ("queue time per request", r"rate\(nv_inference_queue_duration_us.*\) / .*rate\(nv_inference_request_success"),
        (
            "compute time per request",
            r"rate\(nv_inference_compute_infer_duration_us.*\) / .*rate\(nv_inference_request_success",
        ),
        (
            "average batch size",
            r"rate\(nv_inference_count\{[^}]*\}\[5m\]\)\) / .*rate\(nv_inference_exec_count\{[^}]*\}\[5m\]\)",
        ),
        (
            "API time to first audio",
            r"histogram_quantile\(0\.95, sum by \(le\) \(rate\(tts_time_to_first_audio_seconds_bucket",
        ),
        ("model time to first chunk", r"tts_xtts_time_to_first_chunk_seconds"),
        ("active streams per GPU", r"sum\(tts_active_streams\) / clamp_min\(count\(nv_gpu_utilization\)"),
        ("GPU utilisation", r"^nv_gpu_utilization$"),
        ("GPU memory", r"^nv_gpu_memory_used_bytes$"),
        ("Triton error rate", r"rate\(nv_inference_request_failure"),
        ("API error rate", r'tts_http_requests_total\{status=~"5\.\."\}'),
        ("requests in flight per Triton replica", r"sum by \(replica\) \(tts_triton_replica_outstanding_streams\)"),
        ("routing decisions per Triton replica", r"sum by \(replica, kind\) \(rate\(tts_triton_routed_total"),
        ("admitted per tier", r'sum by \(tier\) \(rate\(tts_tenant_admission_decisions_total\{outcome="admitted"\}'),
        ("refused per tier", r'sum by \(tier\) \(rate\(tts_tenant_admission_decisions_total\{outcome="shed"\}'),
        ("tenants refused most", r"topk\(10, sum by \(tenant\)"),
        ("expected wait per tier", r"tts_tier_admission_expected_wait_seconds_bucket"),
        ("Triton replicas in rotation", r"tts_triton_replica_ready"),
        ("control-plane replicas sharing admission", r"sum\(tts_admission_sharing_up\)"),
    ],
)
def test_panel_for_each_capacity_metric(dashboard: dict, what: str, pattern: str) -> None:
    panel = _panel_with(dashboard, pattern)
    assert panel["title"], what


def test_units(dashboard: dict) -> None:
    assert _panel_with(dashboard, r"^nv_gpu_utilization$")["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert _panel_with(dashboard, r"^nv_gpu_memory_used_bytes$")["fieldConfig"]["defaults"]["unit"] == "bytes"
    assert _panel_with(dashboard, r"tts_time_to_first_audio_seconds")["fieldConfig"]["defaults"]["unit"] == "s"
    assert _panel_with(dashboard, r"nv_inference_queue_duration_us")["fieldConfig"]["defaults"]["unit"] == "µs"
