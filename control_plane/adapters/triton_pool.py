"""Routing across Triton replicas: one `TritonClient` per replica, each new request to the least-loaded one.

`TritonPool` presents `TritonClient`'s public methods. Every synthesis stream and conditioning call
is sent to the ready replica with the fewest requests from this control plane in flight (each
weighted by its text length), raised by what the replica itself reports (requests its engine has
queued, its recent mean queue time); ties go to the replica picked longest ago, so a trickle of
short requests rotates too. The load counts are exact for this control plane (they change with
each pick and each end, nothing is sampled), which is what keeps 30 simultaneous streams even on
three replicas; a replica's own reports add what other control planes send it.

Health: every `TRITON_HEALTH_INTERVAL_S` each replica's `/v2/health/ready` is asked (with that
interval as its timeout; a refusal or two timeouts in a row take it out of rotation), and a request
that fails as unavailable takes its replica out at once. A request that fails that way before any
audio came back is tried on the next replica, so a replica lost between two health checks costs new
requests nothing; a stream cut mid-way ends with the usual `TritonUnavailable` (the API's
`engine_unavailable`). The cancel path stays inside each replica's `TritonClient`: an early stop
cancels on the replica that runs the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import httpx
import numpy as np

from control_plane.adapters.triton import AudioChunk, Conditioning, ModelInfo, TritonClient, TritonUnavailable
from control_plane.adapters.triton_replicas import (
    Discovery,
    ReplicaEndpoint,
    ReplicaState,
    discovery_from_settings,
    least_loaded,
    parse_load,
)
from control_plane.metrics import Metrics
from control_plane.settings import Settings
from tts_contract.fairness import Share

log = logging.getLogger(__name__)

LOAD_POLL_S = 2.0  # how often each replica's metrics (queue time, queued requests) are read

ClientFactory = Callable[[ReplicaEndpoint], TritonClient]


def replica_settings(settings: Settings, endpoint: ReplicaEndpoint) -> Settings:
    """The Settings of a `TritonClient` that talks to one replica."""
    return settings.model_copy(update={"triton_grpc_url": endpoint.grpc_url, "triton_http_url": endpoint.http_url,
                                       "triton_metrics_url": endpoint.metrics_url})


class TritonPool:
    def __init__(self, settings: Settings, discovery: Discovery, metrics: Metrics | None = None,
                 client_factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self.discovery = discovery
        self.metrics = metrics
        self.health_interval_s = float(settings.triton_health_interval_s)
        self._factory = client_factory or (lambda endpoint: TritonClient(replica_settings(settings, endpoint)))
        self._replicas: dict[str, ReplicaState] = {}
        self._clients: dict[str, TritonClient] = {}
        self._seq = 0
        self._http = httpx.AsyncClient(timeout=self.health_interval_s)
        self._loop_task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> TritonPool:
        """First discovery and health round (routing works as soon as this returns), then the loop."""
        await self._discover()
        await asyncio.gather(self._check_health(), self._read_loads())
        self._loop_task = asyncio.create_task(self._run())
        return self

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await asyncio.gather(*(client.close() for client in self._clients.values()), return_exceptions=True)
        if self._closing:
            await asyncio.wait(set(self._closing))
        self._clients.clear()
        await self._http.aclose()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_dns = loop.time() + self.discovery.refresh_s
        next_load = loop.time() + LOAD_POLL_S
        while True:
            await asyncio.sleep(self.health_interval_s)
            try:
                if self.discovery.dynamic and loop.time() >= next_dns:
                    next_dns = loop.time() + self.discovery.refresh_s
                    await self._discover()
                await self._check_health()
                if loop.time() >= next_load:
                    next_load = loop.time() + LOAD_POLL_S
                    await self._read_loads()
            except Exception:  # the loop must outlive any one bad round
                log.exception("Triton replica refresh failed")

    # --- membership -------------------------------------------------------------------------
    @property
    def replicas(self) -> list[ReplicaState]:
        return list(self._replicas.values())

    async def _discover(self) -> None:
        endpoints = await self.discovery.endpoints()
        if endpoints is None:
            return
        seen = {e.grpc_url for e in endpoints}
        for endpoint in endpoints:
            replica = self._replicas.get(endpoint.grpc_url)
            if replica is None:
                self._replicas[endpoint.grpc_url] = ReplicaState(endpoint=endpoint)
                self._clients[endpoint.grpc_url] = self._factory(endpoint)
                log.info("Triton replica %s discovered", endpoint.grpc_url)
            elif replica.draining:
                replica.draining = False
                log.info("Triton replica %s is back in discovery", endpoint.grpc_url)
        for name, replica in list(self._replicas.items()):
            if name not in seen and not replica.draining:
                replica.draining = True
                log.info("Triton replica %s left discovery: draining (%d in flight)", name, replica.outstanding)
        self._drop_drained()
        self._publish()

    def _drop_drained(self) -> None:
        for name, replica in list(self._replicas.items()):
            if replica.draining and replica.outstanding == 0:
                del self._replicas[name]
                client = self._clients.pop(name)
                task = asyncio.ensure_future(client.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                self._forget_metrics(name)
                log.info("Triton replica %s removed", name)

    # --- health and load ---------------------------------------------------------------------
    async def _ready(self, replica: ReplicaState) -> bool:
        """A refusal or a not-ready answer counts at once; a check that times out only on the second in a row
        (on a CPU-starved node a busy server can be slow to answer without being gone)."""
        try:
            r = await self._http.get(f"{replica.endpoint.http_url.rstrip('/')}/v2/health/ready")
        except httpx.TimeoutException:
            replica.slow_checks += 1
            return replica.ready and replica.slow_checks < 2
        except httpx.HTTPError:
            return False
        replica.slow_checks = 0
        return r.status_code == 200

    async def _check_health(self) -> None:
        replicas = self.replicas
        results = await asyncio.gather(*(self._ready(r) for r in replicas))
        for replica, ready in zip(replicas, results, strict=True):
            if ready != replica.ready:
                log.log(logging.INFO if ready else logging.WARNING, "Triton replica %s %s", replica.name,
                        "is ready: in rotation" if ready else "is not ready: out of rotation")
            replica.ready = ready
        self._publish()

    async def _read_load(self, replica: ReplicaState) -> None:
        try:
            r = await self._http.get(replica.endpoint.metrics_url)
            r.raise_for_status()
        except httpx.HTTPError:
            return
        report = await asyncio.to_thread(parse_load, r.text)  # a large exposition: parsed off the loop
        replica.load = replica.load.followed_by(report)

    async def _read_loads(self) -> None:
        await asyncio.gather(*(self._read_load(r) for r in self.replicas if r.ready))

    def _mark_unavailable(self, replica: ReplicaState) -> None:
        if replica.ready:
            log.warning("Triton replica %s failed a request as unavailable: out of rotation", replica.name)
        replica.ready = False
        self._publish()

    # --- metrics ----------------------------------------------------------------------------
    def _publish(self) -> None:
        if self.metrics is None:
            return
        for replica in self._replicas.values():
            self.metrics.triton_replica_ready.labels(replica=replica.name).set(1 if replica.routable else 0)
            self.metrics.triton_replica_outstanding.labels(replica=replica.name).set(replica.outstanding)

    def _forget_metrics(self, name: str) -> None:
        if self.metrics is None:
            return
        for metric in (self.metrics.triton_replica_ready, self.metrics.triton_replica_outstanding,
                       self.metrics.triton_failovers):
            with contextlib.suppress(KeyError):
                metric.remove(name)
        for kind in ("stream", "condition"):
            with contextlib.suppress(KeyError):
                self.metrics.triton_routed.remove(name, kind)

    # --- routing ----------------------------------------------------------------------------
    def _pick(self, kind: str, tried: set[str], chars: int) -> ReplicaState:
        replica = least_loaded(self.replicas, exclude=tried)
        if replica is None:
            if tried:
                raise TritonUnavailable("no other Triton replica is ready")
            raise TritonUnavailable("no Triton replica is ready")
        self._seq += 1
        replica.picked_seq = self._seq
        replica.outstanding += 1
        replica.outstanding_chars += chars
        tried.add(replica.name)
        if self.metrics is not None:
            self.metrics.triton_routed.labels(replica=replica.name, kind=kind).inc()
        self._publish()
        return replica

    def _release(self, replica: ReplicaState, chars: int) -> None:
        replica.outstanding -= 1
        replica.outstanding_chars -= chars
        self._publish()
        if replica.draining and replica.outstanding == 0:
            self._drop_drained()

    def _failed_over(self, replica: ReplicaState) -> None:
        self._mark_unavailable(replica)
        if self.metrics is not None:
            self.metrics.triton_failovers.labels(replica=replica.name).inc()

    async def _route_stream(self, open_stream: Callable[[TritonClient], AsyncGenerator[AudioChunk, None]], chars: int
                            ) -> AsyncGenerator[AudioChunk, None]:
        tried: set[str] = set()
        while True:
            replica = self._pick("stream", tried, chars)
            answered = False
            try:
                # aclosing: leaving early closes the replica's stream now, which sends its cancel request.
                async with contextlib.aclosing(open_stream(self._clients[replica.name])) as stream:
                    async for chunk in stream:
                        answered = True
                        yield chunk
                return
            except TritonUnavailable:
                if answered:
                    self._mark_unavailable(replica)
                    raise
                self._failed_over(replica)
            finally:
                self._release(replica, chars)

    async def _route_call(self, kind: str, call: Callable[[TritonClient], Coroutine[Any, Any, Any]]) -> Any:
        tried: set[str] = set()
        while True:
            replica = self._pick(kind, tried, 0)
            try:
                return await call(self._clients[replica.name])
            except TritonUnavailable:
                self._failed_over(replica)
            finally:
                self._release(replica, 0)

    # --- TritonClient's surface ---------------------------------------------------------------
    def _live(self) -> list[tuple[ReplicaState, TritonClient]]:
        return [(r, self._clients[r.name]) for r in self.replicas if not r.draining]

    async def server_ready(self) -> bool:
        return await _first_true([client.server_ready() for _, client in self._live()])

    async def model_ready(self, name: str) -> bool:
        return await _first_true([client.model_ready(name) for _, client in self._live()])

    async def model_info(self, refresh: bool = False) -> dict[str, ModelInfo]:
        """The model info of a ready replica (every replica serves the same repository)."""
        live = sorted(self._live(), key=lambda rc: not rc[0].routable)
        for _, client in live:
            info = await client.model_info(refresh=refresh)
            if info:
                return info
        return {}

    async def condition(self, audio: np.ndarray, sample_rate: int) -> Conditioning:
        return await self._route_call("condition", lambda client: client.condition(audio, sample_rate))

    def stream_piper(self, text: str, *, speed: float = 1.0, request_id: str = "",
                     share: Share | None = None) -> AsyncGenerator[AudioChunk, None]:
        return self._route_stream(lambda client: client.stream_piper(text, speed=speed, request_id=request_id,
                                                                     share=share), len(text))

    def stream_xtts(self, text: str, language: str, gpt_cond_latent: np.ndarray, speaker_embedding: np.ndarray, *,
                    speed: float = 1.0, seed: int | None = None, request_id: str = "", share: Share | None = None,
                    **options: Any) -> AsyncGenerator[AudioChunk, None]:
        """`options`: the sampling overrides `TritonClient.stream_xtts` takes (temperature, top_k, ...)."""
        return self._route_stream(
            lambda client: client.stream_xtts(text, language, gpt_cond_latent, speaker_embedding, speed=speed,
                                              seed=seed, request_id=request_id, share=share, **options), len(text))


async def _first_true(checks: list[Coroutine[Any, Any, bool]]) -> bool:
    """True as soon as one check is: a replica that hangs must not hold up the answer of a ready one."""
    tasks = [asyncio.ensure_future(check) for check in checks]
    try:
        for next_done in asyncio.as_completed(tasks):
            if await next_done:
                return True
        return False
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def build_triton(settings: Settings, metrics: Metrics | None = None) -> TritonClient | TritonPool:
    """A `TritonPool` when replicas are listed (TRITON_GRPC_URLS) or discovered (dns:///), else one client."""
    discovery = discovery_from_settings(settings)
    if discovery is None:
        return TritonClient(settings)
    return await TritonPool(settings, discovery, metrics).start()
