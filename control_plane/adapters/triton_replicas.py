"""Which Triton replicas exist, and how each one is doing: discovery, health and reported load.

Discovery has two sources:

- ``TRITON_GRPC_URL=dns:///<name>:<port>`` (the chart's default: its headless Service): the name is
  re-resolved every ``TRITON_DNS_REFRESH_S``; each address is one replica, reached on that gRPC port
  and on the ports of ``TRITON_HTTP_URL`` (health) and ``TRITON_METRICS_URL`` (load).
- ``TRITON_GRPC_URLS=host:port,host:port`` (other setups): a fixed list; ``TRITON_HTTP_URLS`` and
  ``TRITON_METRICS_URLS`` give each one's HTTP and metrics endpoints in the same order (default: the
  replica's host on the ports of ``TRITON_HTTP_URL`` / ``TRITON_METRICS_URL``).

A replica missing from a later resolution (a terminating pod leaves the headless Service's records)
is *draining*: it gets no new work, keeps its running streams, and is dropped once they end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from control_plane.settings import Settings

log = logging.getLogger(__name__)

DNS_SCHEME = "dns:///"
# Each `QUEUE_MS_PER_STREAM` of mean queue time a replica reports counts like one more outstanding stream.
QUEUE_MS_PER_STREAM = 100.0
# A request's text adds its length / CHARS_PER_STREAM to its weight of 1: synthesis time grows with the text,
# so a replica busy with a few long requests is not taken for idle next to one serving many short ones.
CHARS_PER_STREAM = 100.0


@dataclass(frozen=True)
class ReplicaEndpoint:
    grpc_url: str  # host:port, also the replica's name in metrics and logs
    http_url: str
    metrics_url: str


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _port(url: str, default: int) -> int:
    return urlsplit(url if "//" in url else f"//{url}").port or default


def _host_of(grpc_url: str) -> str:
    host = urlsplit(f"//{grpc_url}").hostname
    if not host:
        raise ValueError(f"not a host:port gRPC endpoint: {grpc_url!r}")
    return host


def _bracket(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def _endpoint(host: str, grpc_port: int, settings: Settings) -> ReplicaEndpoint:
    h = _bracket(host)
    http_port = _port(settings.triton_http_url, 8000)
    metrics = urlsplit(settings.triton_metrics_url)
    metrics_port = metrics.port or 8002
    return ReplicaEndpoint(grpc_url=f"{h}:{grpc_port}", http_url=f"http://{h}:{http_port}",
                           metrics_url=f"http://{h}:{metrics_port}{metrics.path or '/metrics'}")


def static_endpoints(settings: Settings) -> list[ReplicaEndpoint]:
    grpc_urls = _split_list(settings.triton_grpc_urls)
    http_urls = _split_list(settings.triton_http_urls)
    metrics_urls = _split_list(settings.triton_metrics_urls)
    for name, values in (("TRITON_HTTP_URLS", http_urls), ("TRITON_METRICS_URLS", metrics_urls)):
        if values and len(values) != len(grpc_urls):
            raise ValueError(f"{name} must list one URL per TRITON_GRPC_URLS entry ({len(grpc_urls)})")
    out = []
    for i, grpc_url in enumerate(grpc_urls):
        derived = _endpoint(_host_of(grpc_url), _port(grpc_url, 8001), settings)
        out.append(ReplicaEndpoint(grpc_url=grpc_url, http_url=http_urls[i] if http_urls else derived.http_url,
                                   metrics_url=metrics_urls[i] if metrics_urls else derived.metrics_url))
    return out


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA records), sorted, duplicates removed."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class Discovery:
    """The current set of replica endpoints; `dynamic` ones are re-read every `refresh_s`."""

    dynamic = False
    refresh_s = 0.0

    async def endpoints(self) -> list[ReplicaEndpoint] | None:
        """The replicas now, or None when they could not be read (keep the previous set)."""
        raise NotImplementedError


class StaticDiscovery(Discovery):
    def __init__(self, endpoints: list[ReplicaEndpoint]) -> None:
        self._endpoints = list(endpoints)

    async def endpoints(self) -> list[ReplicaEndpoint] | None:
        return list(self._endpoints)


class DnsDiscovery(Discovery):
    """The records of one DNS name (a headless Service: one per ready pod), re-resolved periodically."""

    dynamic = True

    def __init__(self, settings: Settings, resolver: Resolver | None = None) -> None:
        target = settings.triton_grpc_url[len(DNS_SCHEME):]
        self.host = _host_of(target)
        self.port = _port(target, 8001)
        self.refresh_s = float(settings.triton_dns_refresh_s)
        self._settings = settings
        self._resolver = resolver or resolve_addresses
        self._failing = False

    async def endpoints(self) -> list[ReplicaEndpoint] | None:
        try:
            addresses = await self._resolver(self.host, self.port)
        except OSError as exc:
            # No records (every pod gone or not ready) reads as a resolution error: the replicas already
            # known stay, and their health checks take them out of rotation if they are really gone.
            if not self._failing:
                log.warning("resolving Triton replicas at %s failed: %s", self.host, exc)
            self._failing = True
            return None
        if self._failing:
            log.info("resolving Triton replicas at %s works again: %d address(es)", self.host, len(addresses))
        self._failing = False
        return [_endpoint(address, self.port, self._settings) for address in addresses]


def discovery_from_settings(settings: Settings) -> Discovery | None:
    """Where the replicas come from; None when one Triton is configured the single-URL way."""
    if settings.triton_grpc_urls.strip():
        return StaticDiscovery(static_endpoints(settings))
    if settings.triton_grpc_url.startswith(DNS_SCHEME):
        return DnsDiscovery(settings)
    return None


@dataclass
class LoadReport:
    """What one replica's metrics say about its queue: counters as read, and the recent mean derived."""

    requests: float = 0.0  # nv_inference_request_success, all models
    queue_us: float = 0.0  # nv_inference_queue_duration_us, all models
    waiting: float = 0.0  # tts_xtts_engine_requests{state="queued"}: requests the engine has no row for yet
    recent_queue_ms: float = 0.0  # mean queue time of the requests finished since the previous report

    def followed_by(self, later: LoadReport) -> LoadReport:
        done = later.requests - self.requests
        queued = later.queue_us - self.queue_us
        if done > 0 and queued >= 0:
            later.recent_queue_ms = queued / done / 1000.0
        elif done == 0 and queued == 0:
            later.recent_queue_ms = 0.0  # idle: nothing waited
        else:
            later.recent_queue_ms = self.recent_queue_ms  # counters reset (restart): keep the last estimate
        return later


def parse_load(metrics_text: str) -> LoadReport:
    report = LoadReport()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            name = sample.name.removesuffix("_total")  # the parser names counter samples *_total
            if name == "nv_inference_request_success":
                report.requests += sample.value
            elif name == "nv_inference_queue_duration_us":
                report.queue_us += sample.value
            elif name == "tts_xtts_engine_requests" and sample.labels.get("state") == "queued":
                report.waiting += sample.value
    return report


@dataclass
class ReplicaState:
    """Routing state of one replica: what this control plane sends it, and what it reports."""

    endpoint: ReplicaEndpoint
    ready: bool = False
    draining: bool = False
    outstanding: int = 0  # streams and conditioning calls this control plane has on it now
    outstanding_chars: int = 0  # the text those streams carry
    picked_seq: int = 0  # when it was last picked: ties go to the one picked longest ago
    slow_checks: int = 0  # health checks in a row that timed out
    load: LoadReport = field(default_factory=LoadReport)

    @property
    def name(self) -> str:
        return self.endpoint.grpc_url

    @property
    def routable(self) -> bool:
        return self.ready and not self.draining

    def pressure(self) -> float:
        """Load beyond our own streams that the replica reports (other control planes' work shows here)."""
        return self.load.waiting + self.load.recent_queue_ms / QUEUE_MS_PER_STREAM

    def load_score(self) -> float:
        return self.outstanding + self.outstanding_chars / CHARS_PER_STREAM + self.pressure()

    def sort_key(self) -> tuple[float, int]:
        return (self.load_score(), self.picked_seq)


def least_loaded(replicas: list[ReplicaState], exclude: frozenset[str] | set[str] = frozenset()) -> ReplicaState | None:
    candidates = [r for r in replicas if r.routable and r.name not in exclude]
    return min(candidates, key=ReplicaState.sort_key) if candidates else None
