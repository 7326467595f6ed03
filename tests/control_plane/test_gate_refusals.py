"""RefusalTally (api/gate_refusals.py): the admission gate's refusals counted in every series a refusal moves and
logged one line per tenant and route, when flushed: by its timer, by a scrape, by the app closing."""

from __future__ import annotations

import asyncio
import logging

from control_plane.api import gate_refusals
from control_plane.api.gate_refusals import RefusalKey, RefusalTally
from control_plane.metrics import Metrics

FLOOD = RefusalKey("POST", "/v1/synthesize/stream", 503, "engine_overloaded", "t-flood", "standard", "piper")
OTHER = FLOOD._replace(route="/v1/audio/speech", tenant_id="t-other", tier="")


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_flush_counts_every_series_and_logs_one_line_per_key(caplog) -> None:
    metrics = Metrics()
    tally = RefusalTally(metrics)
    caplog.set_level(logging.INFO, logger="tts_gateway.http")
    for i, latency in enumerate((0.004, 0.001, 0.002)):
        tally.note(FLOOD, f"rid-{i}", latency, 2.5 if i else None)
    tally.note(OTHER, "rid-other", 0.003, None)
    assert _value(metrics, "tts_http_requests_total", method="POST", route=FLOOD.route, status="503") == 0
    tally.flush()
    flood = {"method": "POST", "route": FLOOD.route, "status": "503"}
    assert _value(metrics, "tts_http_requests_total", **flood) == 3
    assert _value(metrics, "tts_http_request_duration_seconds_count", **flood) == 3
    assert abs(_value(metrics, "tts_http_request_duration_seconds_sum", **flood) - 0.007) < 1e-9
    assert _value(metrics, "tts_errors_total", code="engine_overloaded") == 4
    assert _value(metrics, "tts_admission_decisions_total", engine="piper", outcome="shed") == 4
    assert _value(metrics, "tts_tenant_admission_decisions_total", engine="piper", tier="standard",
                  tenant="t-flood", outcome="shed") == 3
    assert _value(metrics, "tts_tenant_admission_decisions_total", engine="piper", tier="none",
                  tenant="t-other", outcome="shed") == 1
    assert _value(metrics, "tts_tier_admission_expected_wait_seconds_count", engine="piper", tier="standard",
                  outcome="shed") == 2  # the waits known
    lines = {r.tenant_id: r for r in caplog.records if r.getMessage() == "refused"}
    assert set(lines) == {"t-flood", "t-other"}
    flood_line = lines["t-flood"]
    assert (flood_line.count, flood_line.latency_ms_p50, flood_line.latency_ms_max, flood_line.first_request_id,
            flood_line.route, flood_line.code) == (3, 2.0, 4.0, "rid-0", FLOOD.route, "engine_overloaded")
    assert lines["t-other"].count == 1
    tally.flush()  # nothing noted since: nothing counted twice, no line
    assert _value(metrics, "tts_http_requests_total", **flood) == 3
    assert len([r for r in caplog.records if r.getMessage() == "refused"]) == 2


async def test_the_timer_flushes_once_for_everything_noted_meanwhile(monkeypatch) -> None:
    monkeypatch.setattr(gate_refusals, "FLUSH_S", 0.05)
    metrics = Metrics()
    tally = RefusalTally(metrics)
    tally.note(FLOOD, "a", 0.001, None)
    timer = tally._timer
    tally.note(OTHER, "b", 0.001, None)
    assert tally._timer is timer is not None  # one flush scheduled, not one per refusal
    for _ in range(1000):  # due 50 ms after the first refusal: waited for, up to 20 s
        if tally._timer is None:
            break
        await asyncio.sleep(0.02)
    assert tally._timer is None
    assert _value(metrics, "tts_errors_total", code="engine_overloaded") == 2


async def test_a_scrape_sees_every_refusal_noted_before_it() -> None:
    metrics = Metrics()
    tally = RefusalTally(metrics)
    tally.note(FLOOD, "a", 0.001, None)
    page = metrics.exposition().decode()
    assert 'tts_errors_total{code="engine_overloaded"} 1.0' in page
    assert tally._timer is None  # flushed: the timer has nothing left to do
