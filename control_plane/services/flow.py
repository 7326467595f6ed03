"""The synthesis flow every surface shares: admit → prepare → charge → cache → render → store → usage → metrics.

A router (HTTP, OpenAI, ElevenLabs, our WebSocket) translates its protocol into a `SynthesisRequest`,
calls `SynthesisFlow.open()`, and translates the `Speech` it gets back (PCM or encoded chunks, mark
events, or the whole file) into its own framing. `Speech.finish()` releases the stream slot and
records usage and metrics exactly once, whatever happened: completed, failed, or abandoned by a
client that went away (status 499).

Realtime sessions open one `Speech` per piece of text with `record=False` and record the usage of
the whole context themselves (`SynthesisFlow.record`), so a context is one request to usage,
limits and billing, while each piece still gets its own cache lookup.

Admission is decided first, before the stream slot, the plan and the cache lookup, on a cheap estimate of the
request's first engine call (`SynthesisService.first_call_estimate`): under overload a refusal then costs
only the HTTP layer, auth and the decision, not the plan (normalisation, lexicons, voice, cache key). Once
the plan is made the admitted request's reservation is made exact (`Admission.resize`), never decided
again. A request with no cheap estimate (SSML) is decided after its plan, as before; so is one this
replica recently found or stored in the cache (`KNOWN_CACHED`), so a cached answer is still served under
overload.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from control_plane.adapters.cache import AudioCache, CacheEntry
from control_plane.adapters.limits import Limiter
from control_plane.errors import ServiceError, count_error
from control_plane.metrics import Metrics
from control_plane.services import audio as A
from control_plane.services.admission import Admission, Overloaded, Ticket
from control_plane.services.engine_port import EnginePort
from control_plane.services.rendering import MarkEvent, Rendering, RenderStats, WordsEvent, WordTiming
from control_plane.services.stream_tracker import StreamTracker
from control_plane.services.synthesis import Prepared, SynthesisRequest, SynthesisService
from control_plane.services.tenants import TenantContext
from control_plane.services.usage import UsageRecord, UsageService
from control_plane.services.voices import ResolvedVoice

log = logging.getLogger(__name__)

CLIENT_GONE = 499  # the status usage records for a client that left before the end
KNOWN_CACHED = 4096  # fingerprints of requests recently found or stored in the cache, kept to skip early refusal
CACHE_USER_S = 60.0  # a tenant served from the cache this recently is not refused before its request is read


def fingerprint(tenant_id: str, req: SynthesisRequest, voice: ResolvedVoice | None) -> str:
    """Who asked for what, exactly (every field of the request): equal for requests that share a cache entry
    while the voice and model versions stay the same."""
    what = repr((tenant_id, voice.voice_id if voice else None, req)).encode()
    return hashlib.blake2b(what, digest_size=16).hexdigest()


@dataclass
class Caller:
    """Who asks, through which surface: what usage and logs attribute a request to."""

    tenant: TenantContext
    endpoint: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)


@dataclass
class Outcome:
    """What one request amounted to, for its usage record."""

    engine: str | None = None
    voice_id: str | None = None
    characters: int = 0
    audio_seconds: float = 0.0
    cache_hit: bool = False
    status: int = 200


class SynthesisFlow:
    def __init__(self, synthesis: SynthesisService, engine: EnginePort, cache: AudioCache, limiter: Limiter,
                 usage: UsageService, streams: StreamTracker, metrics: Metrics | None = None,
                 admission: Admission | None = None) -> None:
        self.synthesis = synthesis
        self.engine = engine
        self.cache = cache
        self.limiter = limiter
        self.usage = usage
        self.streams = streams
        self.metrics = metrics
        self.admission = admission
        self._known_cached: OrderedDict[str, None] = OrderedDict()
        self._cache_served: dict[str, float] = {}  # tenant id -> when this replica last served it from the cache

    async def open(self, caller: Caller, req: SynthesisRequest, *, streaming: bool, record: bool = True,
                   voice: ResolvedVoice | None = None, admit: bool = True) -> Speech:
        """An admitted, charged request: its cache entry or a rendering to come. A streaming request
        holds a stream slot (tenant cap, replica cap, drain) until `finish()`. A request the engine could
        not start in time is refused (Overloaded, not charged, not recorded: it cost nothing) unless
        `admit` is False (the later pieces of an utterance already admitted). Errors are recorded (when
        `record`) and raised as service errors."""
        slot: contextlib.AsyncExitStack | None = None
        prepared: Prepared | None = None
        ticket: Ticket | None = None
        known = fingerprint(caller.tenant.tenant_id, req, voice)
        try:
            if admit:
                ticket = self._admit_early(caller, req, voice, known)
            slot = await self.stream_slot(caller.tenant) if streaming else None
            prepared = await self.synthesis.prepare(caller.tenant.tenant_id, req, voice)
            entry = await self._cached(prepared)
            if entry is not None:
                self._remember_cached(known)
                self._cache_user(caller.tenant.tenant_id)
            ticket = self._admit_planned(caller, prepared, entry, ticket, admit)
            if prepared.characters:
                await self.limiter.charge_characters(caller.tenant, prepared.characters)
        except BaseException as exc:
            if ticket is not None and self.admission is not None:
                self.admission.release(ticket)
            if slot is not None:
                await slot.aclose()
            if isinstance(exc, ServiceError):
                self.observe_error(exc)
                if record and not isinstance(exc, Overloaded):
                    await self.record(caller, Outcome(engine=prepared.engine if prepared else None,
                                                      voice_id=req.voice_id, status=exc.status_code))
            raise
        return Speech(self, caller, prepared, entry, slot, record, ticket, known)

    def _admit_early(self, caller: Caller, req: SynthesisRequest, voice: ResolvedVoice | None,
                     known: str) -> Ticket | None:
        """Admit or refuse (Overloaded) on the estimate of the first engine call; None: decided after the plan."""
        if self.admission is None or known in self._known_cached:
            return None
        first = self.synthesis.first_call_estimate(req, voice)
        if first is None:
            return None
        return self.admission.admit(first[0], caller.request_id, first[1], caller.tenant.share, caller.tenant.tier)

    def _admit_planned(self, caller: Caller, prepared: Prepared, entry: CacheEntry | None, ticket: Ticket | None,
                       admit: bool) -> Ticket | None:
        """The admission once the plan is known: a cache hit needs no engine (an early reservation is given
        back), an early admission is made exact, a request not decided yet is decided now."""
        first = prepared.first_call()
        if self.admission is None or entry is not None or first is None or not admit:
            if ticket is not None and self.admission is not None:
                self.admission.release(ticket)
            return None
        if ticket is not None:
            return self.admission.resize(ticket, *first)
        return self.admission.admit(first[0], caller.request_id, first[1], caller.tenant.share, caller.tenant.tier)

    def _cache_user(self, tenant_id: str) -> None:
        if len(self._cache_served) >= KNOWN_CACHED:
            self._cache_served.clear()
        self._cache_served[tenant_id] = time.monotonic()

    def serves_from_cache(self, tenant_id: str) -> bool:
        """Whether this replica served the tenant from the cache within CACHE_USER_S: its next request may be a
        hit, which is served under overload, so it is not refused before its request is read."""
        at = self._cache_served.get(tenant_id)
        return at is not None and time.monotonic() - at < CACHE_USER_S

    def _remember_cached(self, known: str) -> None:
        self._known_cached[known] = None
        self._known_cached.move_to_end(known)
        if len(self._known_cached) > KNOWN_CACHED:
            self._known_cached.popitem(last=False)

    async def stream_slot(self, tenant: TenantContext) -> contextlib.AsyncExitStack:
        """Hold a concurrent-stream slot (429 when the tenant's are taken, 503 when the replica is full or
        draining); released when the returned stack is closed."""
        stack = contextlib.AsyncExitStack()
        try:
            await stack.enter_async_context(self.limiter.stream_slot(tenant))
            await stack.enter_async_context(self.streams.track())
        except BaseException:
            await stack.aclose()
            raise
        return stack

    async def _cached(self, prepared: Prepared) -> CacheEntry | None:
        entry = await self.cache.get(prepared.cache_key)
        if self.metrics is not None:
            counter = self.metrics.cache_hits if entry else self.metrics.cache_misses
            counter.labels(engine=prepared.engine).inc()
        return entry

    async def store(self, prepared: Prepared, audio: bytes, stats: RenderStats, known: str = "") -> None:
        meta = {"content_type": prepared.content_type, "duration_s": round(stats.audio_seconds, 6),
                "rate": prepared.rate, "marks": [[m.name, m.time_s] for m in stats.marks],
                "words": [[w.word, w.start_s, w.end_s, w.char_start, w.char_end] for w in stats.words]}
        await self.cache.set(prepared.cache_key, CacheEntry(audio=audio, meta=meta))
        if known:
            self._remember_cached(known)

    async def record(self, caller: Caller, outcome: Outcome) -> None:
        """Usage for every request, errors included; recording never fails the request."""
        try:
            await self.usage.record(UsageRecord(
                tenant_id=caller.tenant.tenant_id, request_id=caller.request_id, endpoint=caller.endpoint,
                engine=outcome.engine, voice_id=outcome.voice_id, characters=outcome.characters,
                audio_seconds=round(outcome.audio_seconds, 4), cache_hit=outcome.cache_hit,
                latency_ms=int((time.perf_counter() - caller.started) * 1000), status_code=outcome.status))
        except Exception as exc:
            log.warning("usage record failed: %s", type(exc).__name__)

    def observe(self, engine: str, stats: RenderStats, *, cache_hit: bool) -> None:
        if self.metrics is None or not stats.samples:
            return
        self.metrics.audio_seconds.labels(engine=engine).inc(stats.audio_seconds)
        if stats.first_audio_s is not None and not cache_hit:
            self.metrics.time_to_first_audio.labels(engine=engine).observe(stats.first_audio_s)

    def observe_error(self, error: ServiceError) -> None:
        count_error(self.metrics, error.code, error)


class Speech:
    """One request's audio. Iterate one of `pcm()`, `encoded()` or call `whole()`, then `finish()`."""

    def __init__(self, flow: SynthesisFlow, caller: Caller, prepared: Prepared, entry: CacheEntry | None,
                 slot: contextlib.AsyncExitStack | None, record: bool, ticket: Ticket | None = None,
                 known: str = "") -> None:
        self.flow = flow
        self._known = known  # the request's fingerprint (SynthesisFlow.store)
        self._ticket = ticket
        self.caller = caller
        self.prepared = prepared
        self.entry = entry
        self._slot = slot
        self._record = record
        self.stats = RenderStats(rate=prepared.rate)
        if entry is not None:
            self.stats.samples = int(round(entry.meta.get("duration_s", 0) * prepared.rate))
            self.stats.marks = [MarkEvent(str(n), float(t)) for n, t in entry.meta.get("marks") or []]
            self.stats.words = [WordTiming(str(w), float(a), float(b), int(c), int(d))
                                for w, a, b, c, d in entry.meta.get("words") or []]
        self.completed = False
        self.error: ServiceError | None = None
        self._finished = False

    @property
    def cache_hit(self) -> bool:
        return self.entry is not None

    @property
    def marks(self) -> list[list[Any]]:
        return [[m.name, m.time_s] for m in self.stats.marks]

    def _rendering(self) -> Rendering:
        rendering = Rendering(self.flow.engine, self.prepared, self.caller.request_id, self.caller.tenant.share)
        self.stats = rendering.stats
        return rendering

    @property
    def words(self) -> list[WordTiming]:
        return self.stats.words

    async def pcm(self) -> AsyncIterator[np.ndarray | MarkEvent | WordsEvent]:
        """Float32 chunks at the output rate, marks and word timings. A cached raw-PCM entry is decoded;
        any other format's entry needs `encoded()`."""
        try:
            if self.entry is not None and self.prepared.fmt == "pcm":
                if self.stats.words:
                    yield WordsEvent(self.stats.words)
                yield np.frombuffer(self.entry.audio, dtype="<i2").astype(np.float32) / 32768.0
                for mark in self.stats.marks:
                    yield mark
            else:
                assert self.entry is None, "a cached entry in an encoded format is read with encoded()"
                parts: list[np.ndarray] = []
                async for item in self._rendering().pcm():
                    if isinstance(item, np.ndarray):
                        parts.append(item)
                    yield item
                if self.prepared.fmt == "pcm":
                    await self.flow.store(self.prepared, await A.encode_async(A.concat(parts), self.prepared.rate,
                                                                              "pcm"), self.stats, self._known)
            self.completed = True
        except ServiceError as exc:
            self.error = exc
            raise

    async def encoded(self) -> AsyncIterator[bytes | MarkEvent | WordsEvent]:
        """Bytes of the requested format as they are produced (WAV with an open-length header), marks and
        word timings."""
        try:
            if self.entry is not None:
                if self.stats.words:
                    yield WordsEvent(self.stats.words)
                yield self.entry.audio
            else:
                streamed: list[bytes] = []
                async for item in self._rendering().encoded():
                    if isinstance(item, bytes):
                        streamed.append(item)
                    yield item
                cacheable = _cacheable(self.prepared, streamed)
                if cacheable is not None:
                    await self.flow.store(self.prepared, cacheable, self.stats, self._known)
            self.completed = True
        except ServiceError as exc:
            self.error = exc
            raise

    async def whole(self) -> bytes:
        """The whole file at once, with exact sizes in its header."""
        if self.entry is not None:
            self.completed = True
            return self.entry.audio
        parts: list[np.ndarray] = []
        try:
            async for item in self._rendering().pcm():
                if isinstance(item, np.ndarray):
                    parts.append(item)
        except ServiceError as exc:
            self.error = exc
            raise
        body = await A.encode_async(A.concat(parts), self.prepared.rate, self.prepared.fmt)
        await self.flow.store(self.prepared, body, self.stats, self._known)
        self.completed = True
        return body

    async def finish(self, status: int | None = None) -> Outcome:
        """Release the slot; observe and record the request once. Status: given, or the error's, 200 when
        complete, else 499 (the client went away)."""
        if status is None:
            status = self.error.status_code if self.error else 200 if self.completed else CLIENT_GONE
        outcome = Outcome(engine=self.prepared.engine, voice_id=self.prepared.request.voice_id,
                          characters=self.prepared.characters, audio_seconds=self.stats.audio_seconds,
                          cache_hit=self.cache_hit, status=status)
        if self._finished:
            return outcome
        self._finished = True
        if self._ticket is not None and self.flow.admission is not None:
            self.flow.admission.release(self._ticket)
        if self._slot is not None:
            await self._slot.aclose()
        if self.error is not None:
            self.flow.observe_error(self.error)
        elif status == 200:
            self.flow.observe(self.prepared.engine, self.stats, cache_hit=self.cache_hit)
        if self._record:
            await self.flow.record(self.caller, outcome)
        return outcome


def _cacheable(prepared: Prepared, streamed: list[bytes]) -> bytes | None:
    """The streamed bytes as a whole file for the cache: WAV gets its real sizes. A streamed FLAC leaves
    its length open, which some readers reject in a file, so it is not cached from a stream."""
    data = b"".join(streamed)
    if prepared.fmt == "wav":
        pcm = data[44:]
        return A.wav_header(prepared.rate, len(pcm)) + pcm
    return None if prepared.fmt == "flac" else data
