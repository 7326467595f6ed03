"""Prometheus metrics of one app instance, in its own registry (two apps in one process stay apart).

Names the Helm chart and the Grafana dashboard read: `tts_http_requests_total{method,route,status}`,
`tts_time_to_first_audio_seconds` (histogram by engine), `tts_active_streams`. The cache hit ratio is
exported as a gauge computed at scrape time from the hit and miss counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest

# The *_created series double the exposition and no dashboard reads them.
disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
MAX_TENANT_LABELS = 50  # tenants named in per-tenant series; later ones are counted as OTHER_TENANT
OTHER_TENANT = "other"
FIRST_AUDIO_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)


class _KeptChildren:
    """`labels()` from a dict of the children already made: prometheus_client's own checks the label names,
    converts every value and takes a lock on each call, a cost every request and every refusal pays several
    times. The first call for a label set still goes through it (and its errors); a child removed from the
    metric since (`remove`, `clear`) is made again."""

    _kept: dict[Any, Any]

    def labels(self, *values: Any, **named: Any) -> Any:
        key = values or tuple(named.items())
        kept = self.__dict__.get("_kept")
        if kept is None:
            kept = self._kept = {}
        child = kept.get(key)
        if child is None or self._metrics.get(child._labelvalues) is not child:  # type: ignore[attr-defined]
            child = kept[key] = super().labels(*values, **named)  # type: ignore[misc]
        return child


class Counter(_KeptChildren, prometheus_client.Counter):
    pass


class Gauge(_KeptChildren, prometheus_client.Gauge):
    pass


class Histogram(_KeptChildren, prometheus_client.Histogram):
    pass


def _task_count() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # read outside the event loop
        return 0.0


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter("tts_http_requests", "HTTP requests served", ["method", "route", "status"],
                                     registry=r)
        self.request_latency = Histogram("tts_http_request_duration_seconds", "Time to the response headers",
                                         ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.time_to_first_audio = Histogram("tts_time_to_first_audio_seconds",
                                             "From request to the first audio bytes", ["engine"],
                                             buckets=FIRST_AUDIO_BUCKETS, registry=r)
        self.audio_seconds = Counter("tts_audio_seconds", "Seconds of audio produced", ["engine"], registry=r)
        self.cache_hits = Counter("tts_cache_hits", "Audio cache hits", ["engine"], registry=r)
        self.cache_misses = Counter("tts_cache_misses", "Audio cache misses", ["engine"], registry=r)
        self.rate_limited = Counter("tts_rate_limited", "Requests refused by a limit", ["limit"], registry=r)
        self.active_streams = Gauge("tts_active_streams", "Streams being served by this replica", registry=r)
        self.errors = Counter("tts_errors", "Error responses by error code", ["code"], registry=r)
        self.cache_hit_ratio = Gauge("tts_cache_hit_ratio", "Audio cache hits / lookups since start", registry=r)
        self.cache_hit_ratio.set_function(self._hit_ratio)
        self.redis_errors = Counter("tts_redis_errors", "Redis operations that failed (limits, quota, cache)",
                                    ["operation"], registry=r)
        self.redis_up = Gauge("tts_redis_up", "1 while Redis answers, 0 after a failure until it answers again "
                              "(stays 1 without Redis)", registry=r)
        self.redis_up.set(1)
        # Routing across Triton replicas (TRITON_GRPC_URLS or a dns:/// TRITON_GRPC_URL); `replica` is host:port.
        self.triton_replica_outstanding = Gauge("tts_triton_replica_outstanding_streams",
                                                "Requests this replica has in flight on each Triton replica",
                                                ["replica"], registry=r)
        self.triton_replica_ready = Gauge("tts_triton_replica_ready", "1 while a Triton replica is in rotation",
                                          ["replica"], registry=r)
        self.triton_routed = Counter("tts_triton_routed", "Requests routed to each Triton replica",
                                     ["replica", "kind"], registry=r)
        self.triton_failovers = Counter("tts_triton_failovers", "Requests moved to another Triton replica after "
                                        "this one failed them as unavailable before answering", ["replica"],
                                        registry=r)
        # Admission control (services/admission.py): the signal the HPA and capacity planning use.
        self.admission_decisions = Counter("tts_admission_decisions", "Engine-bound requests admitted or shed "
                                           "(refused at once with 503 engine_overloaded)", ["engine", "outcome"],
                                           registry=r)
        self.admission_expected_wait = Gauge("tts_admission_expected_wait_seconds", "Seconds a request arriving now "
                                             "would wait for its engine to start it (backlog / service rate)",
                                             ["engine"], registry=r)
        self.engine_backlog = Gauge("tts_engine_backlog_characters", "Characters of engine work in flight or "
                                    "admitted from this replica", ["engine"], registry=r)
        self.engine_service_rate = Gauge("tts_engine_service_rate_characters_per_second", "Characters the engine "
                                         "completes per busy second, as measured by this replica", ["engine"],
                                         registry=r)
        # Admission state shared between control-plane replicas (adapters/admission_exchange.py).
        self.admission_sharing_up = Gauge("tts_admission_sharing_up", "1 while this replica's admission sees the "
                                          "other replicas' load (through Redis), 0 while it decides alone",
                                          registry=r)
        self.admission_peer_replicas = Gauge("tts_admission_peer_replicas", "Other live control-plane replicas "
                                             "whose load this replica's admission counts", registry=r)
        # Fair shares (per tenant and tier). A tenant label per tenant would grow without bound: the first
        # MAX_TENANT_LABELS tenants seen are named, later ones counted together as "other"; tiers are few.
        self.tenant_admission = Counter("tts_tenant_admission_decisions", "Engine-bound requests admitted or "
                                        "shed, by tenant and priority tier", ["engine", "tier", "tenant", "outcome"],
                                        registry=r)
        self.tier_admission_wait = Histogram("tts_tier_admission_expected_wait_seconds", "Expected wait for the "
                                             "engine (under the fair shares) of each admission decision, by tier "
                                             "and outcome", ["engine", "tier", "outcome"], buckets=WAIT_BUCKETS,
                                             registry=r)
        self._tenant_labels: set[str] = set()
        self.before_scrape: list[Callable[[], None]] = []  # flushes of counts kept back, run by exposition()
        self.event_loop_tasks = Gauge("tts_event_loop_tasks", "asyncio tasks alive in this process (leak watch)",
                                      registry=r)
        self.event_loop_tasks.set_function(_task_count)
        self.event_loop_lag = Histogram("tts_event_loop_lag_seconds", "How late a periodic probe on the event loop "
                                        "wakes up (a blocked loop delays every stream and ping)",
                                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=r)

    def tenant_label(self, tenant: str) -> str:
        if tenant in self._tenant_labels:
            return tenant
        if len(self._tenant_labels) < MAX_TENANT_LABELS:
            self._tenant_labels.add(tenant)
            return tenant
        return OTHER_TENANT

    def tenant_decision(self, engine: str, tenant: str, tier: str, outcome: str, wait: float | None) -> None:
        self.tenant_decisions(engine, tenant, tier, outcome, 1, () if wait is None else (wait,))

    def tenant_decisions(self, engine: str, tenant: str, tier: str, outcome: str, count: int,
                         waits: Iterable[float]) -> None:
        """`count` admission decisions of one tenant alike, with the expected waits known of them."""
        tier = tier or "none"
        self.tenant_admission.labels(engine=engine, tier=tier, tenant=self.tenant_label(tenant) or "none",
                                     outcome=outcome).inc(count)
        histogram = None
        for wait in waits:
            histogram = histogram or self.tier_admission_wait.labels(engine=engine, tier=tier, outcome=outcome)
            histogram.observe(wait)

    @staticmethod
    def _total(counter: Counter) -> float:
        return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))

    def _hit_ratio(self) -> float:
        hits, misses = self._total(self.cache_hits), self._total(self.cache_misses)
        return hits / (hits + misses) if hits + misses else 0.0

    def exposition(self) -> bytes:
        for flush in self.before_scrape:  # counts kept back from the hot path (api/gate_refusals.py)
            flush()
        return generate_latest(self.registry)
