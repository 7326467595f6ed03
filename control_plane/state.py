"""Everything one app instance holds, built once by the lifespan and closed with it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from control_plane.adapters.cache import build_cache
from control_plane.adapters.limits import Limiter
from control_plane.adapters.redis import connect
from control_plane.adapters.store import Store
from control_plane.adapters.triton import TritonClient
from control_plane.errors import ApiError
from control_plane.metrics import Metrics
from control_plane.services.lexicons import LexiconService
from control_plane.services.synthesis import SynthesisService
from control_plane.services.tenants import TenantService
from control_plane.services.usage import UsageService
from control_plane.services.voices import VoiceService
from control_plane.settings import Settings

DRAIN_RETRY_AFTER_S = 5


class StreamTracker:
    """Streams in flight on this replica: the `tts_active_streams` gauge, the replica-wide cap
    (MAX_CONCURRENT_STREAMS, 503 past it) and graceful drain (503 + Retry-After to new streams, then
    wait for the running ones)."""

    def __init__(self, max_streams: int, metrics: Metrics | None = None) -> None:
        self.max_streams = max_streams
        self.metrics = metrics
        self.active = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def _changed(self) -> None:
        if self.metrics is not None:
            self.metrics.active_streams.set(self.active)
        if self.active == 0:
            self._idle.set()
        else:
            self._idle.clear()

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        if self.draining:
            raise ApiError(503, "shutting_down", "this server is shutting down; retry",
                           headers={"Retry-After": str(DRAIN_RETRY_AFTER_S)})
        if self.active >= self.max_streams:
            raise ApiError(503, "server_busy", f"this server is serving its maximum of {self.max_streams} streams",
                           headers={"Retry-After": "1"})
        self.active += 1
        self._changed()
        try:
            yield
        finally:
            self.active -= 1
            self._changed()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the contract's signature
        """Refuse new streams and wait up to `timeout` s for the running ones; True when none is left."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class AppState:
    settings: Settings
    store: Store
    limiter: Limiter
    usage: UsageService
    tenants: TenantService
    metrics: Metrics
    redis: Any | None
    streams: StreamTracker
    cache: Any
    triton: TritonClient
    voices: VoiceService
    synthesis: SynthesisService
    lexicons: LexiconService
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)

    async def close(self) -> None:
        for closer in (self.triton.close, self.limiter.close, self.store.close):
            with contextlib.suppress(Exception):
                await closer()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


async def build_state(settings: Settings) -> AppState:
    metrics = Metrics()
    store = Store.from_settings(settings)
    if not store.db.is_postgres:
        await store.db.create_all()  # the embedded store needs no separate migrate step
    redis = connect(settings)
    usage = UsageService(store, metrics)
    limiter = Limiter(redis, settings.redis_url, metrics, month_usage=usage.characters_this_month,
                      failure_mode=settings.redis_failure_mode)
    cache = build_cache(settings, redis, metrics, redis_usable=lambda: limiter.redis_usable)
    triton = TritonClient(settings)
    voices = VoiceService(store, triton, cache, settings)
    lexicons = LexiconService(store, settings)
    synthesis = SynthesisService(triton, cache, voices, settings, metrics=metrics, lexicons=lexicons)
    return AppState(
        settings=settings, store=store, limiter=limiter, usage=usage, tenants=TenantService(store, settings),
        metrics=metrics, redis=redis, streams=StreamTracker(settings.max_concurrent_streams, metrics), cache=cache,
        triton=triton, voices=voices, synthesis=synthesis, lexicons=lexicons,
    )
