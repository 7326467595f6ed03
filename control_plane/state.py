"""Everything one app instance holds, built once by the lifespan and closed with it."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from control_plane.adapters.admission_exchange import AdmissionExchange
from control_plane.adapters.cache import AudioCache, build_cache
from control_plane.adapters.limits import Limiter
from control_plane.adapters.redis import connect
from control_plane.adapters.store import Store
from control_plane.adapters.triton_pool import build_triton
from control_plane.api.gate_refusals import RefusalTally
from control_plane.metrics import Metrics
from control_plane.services.admission import Admission
from control_plane.services.engine_port import EnginePort
from control_plane.services.flow import SynthesisFlow
from control_plane.services.lexicons import LexiconService
from control_plane.services.stream_tracker import StreamTracker
from control_plane.services.synthesis import SynthesisService
from control_plane.services.tenants import TenantService
from control_plane.services.usage import UsageService
from control_plane.services.voices import VoiceService
from control_plane.settings import Settings


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
    cache: AudioCache
    engine: EnginePort
    voices: VoiceService
    synthesis: SynthesisService
    flow: SynthesisFlow
    lexicons: LexiconService
    admission: Admission
    gate_refusals: RefusalTally
    admission_exchange: AdmissionExchange | None = None
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def triton(self) -> EnginePort:
        """The engine port under its deployment name (health and engine listings speak of Triton)."""
        return self.engine

    async def close(self) -> None:
        self.gate_refusals.flush()
        if self.admission_exchange is not None:
            with contextlib.suppress(Exception):
                await self.admission_exchange.stop()
        for closer in (self.engine.close, self.limiter.close, self.store.close):
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
    engine: EnginePort = await build_triton(settings, metrics)
    voices = VoiceService(store, engine, cache, settings)
    lexicons = LexiconService(store, settings)
    synthesis = SynthesisService(engine, voices, lexicons, settings.tts_normalize_default,
                                 shorten_first_segment=settings.first_segment_split)
    streams = StreamTracker(settings.max_concurrent_streams, metrics)
    admission = Admission(settings.admission_max_wait_s, settings.admission_min_inflight, metrics)
    # Replicas behind the same engines share their loads through Redis, off the request path.
    exchange = AdmissionExchange(redis, admission, settings.admission_share_interval_s, metrics) \
        if redis is not None and settings.admission_share_interval_s > 0 else None
    if exchange is not None:
        exchange.start()
    # Synthesis goes through the metered port: every engine stream counts in its engine's measured load.
    flow = SynthesisFlow(synthesis, admission.engine(engine), cache, limiter, usage, streams, metrics, admission)
    return AppState(
        settings=settings, store=store, limiter=limiter, usage=usage, tenants=TenantService(store, settings),
        metrics=metrics, redis=redis, streams=streams, cache=cache, engine=engine, voices=voices,
        synthesis=synthesis, flow=flow, lexicons=lexicons, admission=admission, gate_refusals=RefusalTally(metrics),
        admission_exchange=exchange,
    )
