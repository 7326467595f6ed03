"""Synthesis: request → plan → cache? → Triton streams → post-processing → encoded chunks.

One `Rendering` drives a request. Segments are synthesised in order; each engine stream is
volume-adjusted, pitch-shifted when asked (that one segment is buffered: the shift needs it whole),
resampled to the output rate by a streaming resampler, and encoded as it arrives. Planned silences
are inserted exactly (round(ms × rate / 1000) samples at the output rate). Mark times come from the
audio actually produced: a mark inside a segment is placed in proportion to its character offset
within that segment's real duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from control_plane.adapters.cache import KEY_PREFIX, AudioCache, CacheEntry
from control_plane.adapters.triton import TritonClient, TritonError, TritonTimeout, TritonUnavailable
from control_plane.errors import ApiError
from control_plane.services import audio as A
from control_plane.services.normalize import NormalizationUnavailable
from control_plane.services.normalize.ipa import text_for_engine
from control_plane.services.planning import SILENT_DB, Plan, plan_text
from control_plane.services.ssml import SsmlRejected, parse_ssml
from control_plane.services.voices import PIPER_VOICE, ResolvedVoice, VoiceService
from control_plane.settings import Settings
from tts_engine.xtts.languages import XTTS_LANGUAGES, normalise_language

NATIVE_RATES = {"piper": 22050, "xtts": 24000}
PIPER_LANGUAGES = ("en",)
MAX_TEXT_CHARS = 5000
PLAN_IN_THREAD_CHARS = 1000  # planning (lexicons + normalisation) costs ~8 ms per 1,000 characters
_END = object()  # end of one segment's audio in its queue


@dataclass
class SynthesisRequest:
    text: str | None = None
    ssml: str | None = None
    voice_id: str = "en-US-generic"
    language: str = "en"
    speed: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0  # linear gain, 1.0 = unchanged, 0 = silent
    format: str = "wav"
    sample_rate: int | None = None
    seed: int | None = None
    normalize: str | None = None  # "auto" | "on" | "off"; None: TTS_NORMALIZE_DEFAULT
    lexicons: list[str] | None = None  # the tenant's lexicons to use, besides those applied by default


@dataclass(frozen=True)
class MarkEvent:
    name: str
    time_s: float


@dataclass
class Prepared:
    request: SynthesisRequest
    plan: Plan
    voices: dict[str | None, ResolvedVoice]
    fmt: str
    rate: int
    engine: str  # the engines used, "+"-joined when SSML mixes them
    cache_key: str
    model_versions: dict[str, str]

    @property
    def content_type(self) -> str:
        return A.FORMATS[self.fmt].content_type

    @property
    def characters(self) -> int:
        return self.plan.billed_characters

    @property
    def default_voice(self) -> ResolvedVoice:
        return self.voices[None]


@dataclass
class RenderStats:
    samples: int = 0
    rate: int = 0
    first_audio_s: float | None = None
    marks: list[MarkEvent] = field(default_factory=list)

    @property
    def audio_seconds(self) -> float:
        return self.samples / self.rate if self.rate else 0.0


def _gain_db(volume: float) -> float:
    return SILENT_DB if volume <= 0 else 20.0 * math.log10(volume)


class SynthesisService:
    def __init__(
        self,
        triton: TritonClient,
        cache: AudioCache,
        voices: VoiceService,
        settings: Settings,
        metrics: Any | None = None,
        lexicons: Any | None = None,
    ) -> None:
        self.lexicons = lexicons  # LexiconService: the tenant's pronunciation lexicons
        self.triton = triton
        self.cache = cache
        self.voices = voices
        self.settings = settings
        self.metrics = metrics

    # --- planning ---
    async def prepare(self, tenant_id: str, req: SynthesisRequest) -> Prepared:
        if req.format not in A.FORMATS:
            raise ApiError(422, "unsupported_format", f"format must be one of {', '.join(A.FORMATS)}")
        if bool(req.text) == bool(req.ssml):
            raise ApiError(422, "invalid_request", "give exactly one of text or ssml")
        default = await self.voices.resolve(tenant_id, req.voice_id)
        gain = _gain_db(req.volume)
        mode: Any = req.normalize or self.settings.tts_normalize_default
        chosen, available = None, {}
        if self.lexicons is not None:
            book = await self.lexicons.book(tenant_id)
            chosen, available = book.select(req.lexicons), book.lexicons
        if req.ssml:
            try:
                result = await _off_loop(len(req.ssml), parse_ssml, req.ssml, language=req.language, voice_id=None,
                                         speed=req.speed, pitch=req.pitch, volume_db=gain, normalize_mode=mode,
                                         lexicons=chosen, available=available)
            except SsmlRejected as exc:
                raise ApiError(400, exc.code, exc.message) from None
            except NormalizationUnavailable as exc:
                raise ApiError(422, "normalization_unavailable", str(exc)) from None
            if not result.valid:
                first = result.errors[0]
                raise ApiError(422, "invalid_ssml", f"line {first.line}, column {first.column}: {first.message}")
            plan = result.plan
        else:
            text = req.text or ""
            if len(text) > MAX_TEXT_CHARS:
                raise ApiError(422, "text_too_long", f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
            try:
                plan = await _off_loop(len(text), plan_text, text, language=req.language, speed=req.speed,
                                       pitch=req.pitch, volume_db=gain, normalize_mode=mode, lexicons=chosen)
            except NormalizationUnavailable as exc:
                raise ApiError(422, "normalization_unavailable", str(exc)) from None
        if not plan.segments:
            raise ApiError(422, "empty_text", "there is nothing to say")
        voices: dict[str | None, ResolvedVoice] = {None: default}
        for vid in sorted(plan.voice_ids):
            voices[vid] = await self.voices.resolve(tenant_id, vid)
        for seg in plan.segments:
            voice = voices[seg.voice_id]
            seg.language = _check_language(voice, seg.language)
            seg.text = text_for_engine(seg.text, voice.engine)  # phonemes for Piper, a respelling for XTTS
        engines = sorted({voices[s.voice_id].engine for s in plan.segments if s.text} or {default.engine})
        rate = A.output_rate(req.format, req.sample_rate, NATIVE_RATES[default.engine])
        info = await self.triton.model_info()
        versions = {e: (info[e].model_version if e in info else "unknown") for e in engines}
        key_material = {
            "tenant": tenant_id, "engines": versions,
            "voices": {str(k): [v.voice_id, v.version] for k, v in voices.items()},
            "plan": json.loads(plan.canonical_json()), "format": req.format, "rate": rate, "seed": req.seed,
        }
        digest = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()
        return Prepared(
            request=req, plan=plan, voices=voices, fmt=req.format, rate=rate, engine="+".join(engines),
            cache_key=f"{KEY_PREFIX}:{tenant_id}:{default.voice_id}:{digest}", model_versions=versions,
        )

    # --- cache ---
    async def cached(self, prepared: Prepared) -> CacheEntry | None:
        entry = await self.cache.get(prepared.cache_key)
        if self.metrics is not None:
            _inc(self.metrics, "cache_hits" if entry else "cache_misses", engine=prepared.engine)
        return entry

    async def store(self, prepared: Prepared, audio: bytes, stats: RenderStats) -> None:
        meta = {"content_type": prepared.content_type, "duration_s": round(stats.audio_seconds, 6),
                "rate": prepared.rate, "marks": [[m.name, m.time_s] for m in stats.marks]}
        await self.cache.set(prepared.cache_key, CacheEntry(audio=audio, meta=meta))

    # --- rendering ---
    def render(self, prepared: Prepared, request_id: str = "") -> Rendering:
        return Rendering(self, prepared, request_id)

    async def synthesize(self, prepared: Prepared, request_id: str = "") -> tuple[bytes, RenderStats]:
        """The whole body at once (exact WAV sizes); Triton errors become API errors."""
        rendering = self.render(prepared, request_id)
        parts: list[np.ndarray] = []
        async for item in rendering.pcm():
            if isinstance(item, np.ndarray):
                parts.append(item)
        return A.encode(A.concat(parts), prepared.rate, prepared.fmt), rendering.stats


class Rendering:
    def __init__(self, service: SynthesisService, prepared: Prepared, request_id: str) -> None:
        self.service = service
        self.prepared = prepared
        self.request_id = request_id
        self.stats = RenderStats(rate=prepared.rate)
        self._started = time.perf_counter()

    def _emit(self, x: np.ndarray) -> np.ndarray:
        if x.size and self.stats.first_audio_s is None:
            self.stats.first_audio_s = time.perf_counter() - self._started
        self.stats.samples += x.size
        return x

    async def pcm(self) -> AsyncIterator[np.ndarray | MarkEvent]:
        """Float32 chunks at the output rate, and mark events once their time is known.

        The next segment's Triton request starts while the current one plays out (one segment of
        lookahead), so sentence boundaries add no round trip; leaving early cancels both.
        """
        p = self.prepared
        rate = p.rate
        segments = p.plan.segments
        feeds: dict[int, tuple[asyncio.Queue[Any], asyncio.Task[None]]] = {}

        def start(i: int) -> None:
            if i < len(segments) and segments[i].text and i not in feeds:
                queue: asyncio.Queue[Any] = asyncio.Queue()
                feeds[i] = (queue, asyncio.create_task(self._feed(segments[i], queue)))

        try:
            start(0)
            for i, seg in enumerate(segments):
                start(i + 1)
                if seg.silence_before_ms:
                    yield self._emit(A.silence(seg.silence_before_ms, rate))
                begin = self.stats.samples
                if seg.text:
                    queue = feeds[i][0]
                    while (item := await queue.get()) is not _END:
                        if isinstance(item, BaseException):
                            raise item
                        if item.size:
                            yield self._emit(item)
                length = self.stats.samples - begin
                for name, offset in seg.marks:
                    frac = offset / len(seg.text) if seg.text else 0.0
                    mark = MarkEvent(name, round((begin + frac * length) / rate, 4))
                    self.stats.marks.append(mark)
                    yield mark
                if seg.silence_after_ms:
                    yield self._emit(A.silence(seg.silence_after_ms, rate))
        except TritonUnavailable:
            raise ApiError(503, "engine_unavailable", "the synthesis engine is unavailable; retry later",
                           headers={"Retry-After": "5"}) from None
        except TritonTimeout:
            raise ApiError(504, "engine_timeout", "the synthesis engine did not answer in time") from None
        except TritonError as exc:
            raise ApiError(502, "engine_error", f"synthesis failed: {exc}") from None
        finally:
            for _, task in feeds.values():
                task.cancel()  # closes the task's Triton stream: Triton cancels the request
            for _, task in feeds.values():
                with contextlib.suppress(BaseException):
                    await task

    async def _feed(self, seg: Any, queue: asyncio.Queue[Any]) -> None:
        try:
            async for chunk in self._segment_audio(seg):
                queue.put_nowait(chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            queue.put_nowait(exc)
            return
        queue.put_nowait(_END)

    async def _segment_audio(self, seg: Any) -> AsyncIterator[np.ndarray]:
        p = self.prepared
        voice = p.voices[seg.voice_id]
        speed = min(max(seg.speed, 0.5), 2.0)
        if voice.engine == "piper":
            stream = self.service.triton.stream_piper(seg.text, speed=speed, request_id=self.request_id)
        else:
            assert voice.conditioning is not None
            stream = self.service.triton.stream_xtts(
                seg.text, seg.language, voice.conditioning.gpt_cond_latent, voice.conditioning.speaker_embedding,
                speed=speed, seed=p.request.seed, request_id=self.request_id,
            )
        resampler: A.StreamingResampler | None = None
        held: list[np.ndarray] = []
        native = NATIVE_RATES[voice.engine]
        try:
            async for chunk in stream:
                native = chunk.sample_rate
                if seg.pitch != 1.0:
                    held.append(chunk.samples)
                    continue
                if resampler is None:
                    resampler = A.StreamingResampler(native, p.rate)
                yield resampler.process(_apply_volume(chunk.samples, seg.volume_db))
        finally:
            await stream.aclose()  # cancels the Triton request if we stop early
        if held:
            shifted = A.pitch_shift(np.concatenate(held), native, seg.pitch)
            yield A.resample(_apply_volume(shifted, seg.volume_db), native, p.rate)
        elif resampler is not None:
            yield resampler.process(np.zeros(0, np.float32), final=True)

    async def encoded(self) -> AsyncIterator[bytes | MarkEvent]:
        """Encoded bytes as they are produced, interleaved with mark events."""
        encoder = A.StreamEncoder(self.prepared.fmt, self.prepared.rate)
        async for item in self.pcm():
            if isinstance(item, MarkEvent):
                yield item
                continue
            data = encoder.encode(item)
            if data:
                yield data
        tail = encoder.finish()
        if tail:
            yield tail


async def _off_loop(size: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Short texts are planned inline (a thread hop costs more); long ones in a thread."""
    if size > PLAN_IN_THREAD_CHARS:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def _apply_volume(x: np.ndarray, gain_db: float) -> np.ndarray:
    if gain_db <= SILENT_DB:
        return np.zeros_like(x)
    return A.apply_gain(x, gain_db)


def _check_language(voice: ResolvedVoice, language: str) -> str:
    base = language.strip().lower().split("-")[0].split("_")[0]
    if voice.engine == "piper":
        if base not in PIPER_LANGUAGES:
            raise ApiError(422, "unsupported_language", f"voice {PIPER_VOICE} speaks English only (got {language!r})")
        return "en"
    try:
        return normalise_language(language)
    except ValueError:
        raise ApiError(422, "unsupported_language",
                       f"language {language!r} is not supported; use one of {', '.join(XTTS_LANGUAGES)}") from None


def _inc(metrics: Any, name: str, **labels: str) -> None:
    counter = getattr(metrics, name, None)
    if counter is None:
        return
    try:
        counter.labels(**labels).inc()
    except ValueError:
        counter.inc()
