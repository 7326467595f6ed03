"""The app's metrics (control_plane/metrics.py): labelled children are kept for the paths that count every request,
without changing what is exported."""

from __future__ import annotations

import pytest

from control_plane.metrics import Metrics


def _value(metrics: Metrics, **labels: str) -> float | None:
    return metrics.registry.get_sample_value("tts_http_requests_total", labels)


def test_labels_give_the_same_child_by_name_or_position_and_count_into_the_exposition() -> None:
    metrics = Metrics()
    named = metrics.http_requests.labels(method="POST", route="/v1/x", status="503")
    assert metrics.http_requests.labels(method="POST", route="/v1/x", status="503") is named
    assert metrics.http_requests.labels("POST", "/v1/x", "503") is named
    named.inc()
    metrics.http_requests.labels("POST", "/v1/x", "503").inc()
    assert _value(metrics, method="POST", route="/v1/x", status="503") == 2
    assert b'tts_http_requests_total{method="POST",route="/v1/x",status="503"} 2.0' in metrics.exposition()
    with pytest.raises(ValueError):
        metrics.http_requests.labels(method="POST")  # still checked the first time


def test_a_removed_child_is_made_again() -> None:
    metrics = Metrics()
    first = metrics.http_requests.labels("GET", "/v1/y", "200")
    first.inc()
    metrics.http_requests.remove("GET", "/v1/y", "200")
    assert _value(metrics, method="GET", route="/v1/y", status="200") is None
    again = metrics.http_requests.labels("GET", "/v1/y", "200")
    assert again is not first
    again.inc()
    metrics.http_requests.clear()
    assert metrics.http_requests.labels("GET", "/v1/y", "200") is not again
    histogram = metrics.request_latency.labels(method="GET", route="/v1/y", status="200")
    histogram.observe(0.02)
    assert metrics.registry.get_sample_value("tts_http_request_duration_seconds_count",
                                             {"method": "GET", "route": "/v1/y", "status": "200"}) == 1
