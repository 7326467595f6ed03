"""Replica discovery and the picker's ordering, without servers: parsing, DNS re-resolution, load reports."""

from __future__ import annotations

import pytest

from control_plane.adapters.triton_replicas import (
    DnsDiscovery,
    LoadReport,
    ReplicaEndpoint,
    ReplicaState,
    StaticDiscovery,
    discovery_from_settings,
    least_loaded,
    parse_load,
    static_endpoints,
)
from control_plane.settings import Settings

TRITON_METRICS = """# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="piper",version="1"} 30
nv_inference_request_success{model="xtts",version="1"} 10
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="piper",version="1"} 100000
nv_inference_queue_duration_us{model="xtts",version="1"} 300000
# HELP tts_xtts_engine_requests XTTS requests by state
# TYPE tts_xtts_engine_requests gauge
tts_xtts_engine_requests{model="xtts",state="running"} 8
tts_xtts_engine_requests{model="xtts",state="queued"} 3
"""


def test_single_url_means_no_pool() -> None:
    assert discovery_from_settings(Settings(triton_grpc_url="triton:8001")) is None


def test_static_list_derives_http_and_metrics_from_the_single_urls_ports() -> None:
    settings = Settings(triton_grpc_urls="10.0.0.1:8001, 10.0.0.2:9001,[fd00::3]:8001",
                        triton_http_url="http://triton:8000", triton_metrics_url="http://triton:8002/metrics")
    assert isinstance(discovery_from_settings(settings), StaticDiscovery)
    assert static_endpoints(settings) == [
        ReplicaEndpoint("10.0.0.1:8001", "http://10.0.0.1:8000", "http://10.0.0.1:8002/metrics"),
        ReplicaEndpoint("10.0.0.2:9001", "http://10.0.0.2:8000", "http://10.0.0.2:8002/metrics"),
        ReplicaEndpoint("[fd00::3]:8001", "http://[fd00::3]:8000", "http://[fd00::3]:8002/metrics"),
    ]


def test_static_list_takes_explicit_endpoints_in_order_and_rejects_uneven_lists() -> None:
    settings = Settings(triton_grpc_urls="a:1,b:2", triton_http_urls="http://a:10,http://b:20",
                        triton_metrics_urls="http://a:30/m,http://b:40/m")
    assert [(e.http_url, e.metrics_url) for e in static_endpoints(settings)] == [
        ("http://a:10", "http://a:30/m"), ("http://b:20", "http://b:40/m")]
    with pytest.raises(ValueError, match="TRITON_HTTP_URLS"):
        static_endpoints(Settings(triton_grpc_urls="a:1,b:2", triton_http_urls="http://a:10"))


async def test_dns_discovery_follows_the_records_and_keeps_the_last_set_on_failure() -> None:
    records: list[str] = ["10.1.0.7", "10.1.0.5"]
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        if not records:
            raise OSError("NXDOMAIN")
        return sorted(records)

    settings = Settings(triton_grpc_url="dns:///tts-triton-headless.tts.svc:8001",
                        triton_http_url="http://tts-triton:8000", triton_metrics_url="http://tts-triton-metrics:8002/metrics",
                        triton_dns_refresh_s=2)
    discovery = DnsDiscovery(settings, resolver=resolve)
    assert discovery.dynamic and discovery.refresh_s == 2
    first = await discovery.endpoints()
    assert [e.grpc_url for e in first] == ["10.1.0.5:8001", "10.1.0.7:8001"]
    assert first[0].http_url == "http://10.1.0.5:8000" and first[0].metrics_url == "http://10.1.0.5:8002/metrics"
    records.append("10.1.0.9")
    assert [e.grpc_url for e in await discovery.endpoints()][-1] == "10.1.0.9:8001"
    records.clear()
    assert await discovery.endpoints() is None  # no records: the caller keeps what it had
    assert asked[0] == ("tts-triton-headless.tts.svc", 8001)


def test_load_report_reads_triton_counters_and_the_engine_queue() -> None:
    report = parse_load(TRITON_METRICS)
    assert (report.requests, report.queue_us, report.waiting) == (40, 400000, 3)
    later = parse_load(TRITON_METRICS.replace(" 30\n", " 50\n").replace("100000", "1100000"))
    assert report.followed_by(later).recent_queue_ms == pytest.approx(1000000 / 20 / 1000)  # 50 ms each
    idle = parse_load(TRITON_METRICS.replace(" 30\n", " 50\n").replace("100000", "1100000"))
    assert later.followed_by(idle).recent_queue_ms == 0.0
    restarted = LoadReport(requests=1, queue_us=10)
    assert later.followed_by(restarted).recent_queue_ms == later.recent_queue_ms


def _replica(name: str, **state) -> ReplicaState:
    return ReplicaState(endpoint=ReplicaEndpoint(name, f"http://{name}", f"http://{name}/metrics"), ready=True, **state)


def test_least_loaded_prefers_fewer_in_flight_then_lower_pressure_then_the_least_recent() -> None:
    a, b, c = _replica("a", outstanding=2, picked_seq=3), _replica("b", outstanding=1, picked_seq=5), _replica(
        "c", outstanding=1, picked_seq=4)
    assert least_loaded([a, b, c]) is c  # b and c tie on load; c was picked longer ago
    c.load = LoadReport(waiting=2)  # its engine reports two requests waiting for a decode row
    assert least_loaded([a, b, c]) is b
    b.load = LoadReport(recent_queue_ms=250)  # 250 ms mean queue time counts like 2.5 more streams
    assert least_loaded([a, b, c]) is a
    assert least_loaded([a, b, c], exclude={"a"}) is c


def test_not_ready_and_draining_replicas_get_nothing() -> None:
    a, b = _replica("a", outstanding=5), _replica("b", draining=True)
    assert least_loaded([a, b]) is a
    a.ready = False
    assert least_loaded([a, b]) is None


def test_long_requests_in_flight_weigh_more_than_short_ones() -> None:
    busy = _replica("busy", outstanding=1, outstanding_chars=400)  # one long sentence run: weight 5
    many = _replica("many", outstanding=3, outstanding_chars=75)  # three short ones: weight 3.75
    assert least_loaded([busy, many]) is many
