"""Preparing a synthesis request: validation, the plan (SSML or text), voices, output rate and cache key.

`SynthesisService.prepare` turns what a caller asked for into a `Prepared` request that `Rendering`
(services/rendering.py) can play; `services/flow.py` runs the whole flow around both.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from control_plane import stage_timing
from control_plane.adapters.cache import KEY_PREFIX
from control_plane.errors import BadRequest, InvalidInput
from control_plane.services import audio as A
from control_plane.services.engine_port import EnginePort
from control_plane.services.normalize import NormalizationUnavailable
from control_plane.services.normalize.ipa import text_for_engine
from control_plane.services.planning import SILENT_DB, Plan, plan_text
from control_plane.services.ssml import SsmlRejected, parse_ssml
from control_plane.services.voices import PIPER_VOICE, ResolvedVoice, VoiceService, engine_of
from tts_contract import MAX_TEXT_CHARS, NATIVE_RATES, char_limit, normalise_language, split_text

INLINE_PLAN_CHARS = 500


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
    normalize: str | None = None  # "auto" | "on" | "off"; None: the service's default (TTS_NORMALIZE_DEFAULT)
    lexicons: list[str] | None = None  # the tenant's lexicons to use, besides those applied by default
    shorten_first_segment: bool | None = None  # None: the service's default (FIRST_SEGMENT_SPLIT)


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

    def first_call(self) -> tuple[str, int] | None:
        """The engine and characters of the first engine call the plan makes (None: all silence)."""
        for seg in self.plan.segments:
            if seg.text:
                return self.voices[seg.voice_id].engine, len(seg.text)
        return None


def _gain_db(volume: float) -> float:
    return SILENT_DB if volume <= 0 else 20.0 * math.log10(volume)


class SynthesisService:
    """Validates and plans requests; knows the engines only through the port (for model versions)."""

    def __init__(self, engine: EnginePort, voices: VoiceService, lexicons: Any | None = None,
                 normalize_default: str = "auto", shorten_first_segment: bool = False) -> None:
        self.engine = engine
        self.voices = voices
        self.lexicons = lexicons  # LexiconService: the tenant's pronunciation lexicons
        self.normalize_default = normalize_default
        self.shorten_first_segment = shorten_first_segment  # services/first_segment.py

    def first_call_estimate(self, req: SynthesisRequest, voice: ResolvedVoice | None = None) -> tuple[str, int] | None:
        """A cheap guess at `Prepared.first_call()` made before any planning (no store, no normalisation, no
        lexicons), for admission before the expensive work: the engine the request's voice resolves to and the
        length of its text up to the first sentence cut. None where there is no cheap guess (SSML: its voices
        and silences are known only once parsed; a voice id of no known form) or where `prepare` would refuse
        the request (a bad request gets its 4xx, never a 503, whatever the load)."""
        if req.ssml or not req.text or len(req.text) > MAX_TEXT_CHARS or req.format not in A.FORMATS:
            return None
        engine = voice.engine if voice is not None else engine_of(req.voice_id)
        if engine is None:
            return None
        try:
            normalise_language(req.language, engine)
        except ValueError:
            return None
        limit = char_limit(req.language)
        pieces = split_text(req.text[: 2 * limit + 1].strip(), limit)  # the first cut lies within the limit
        return (engine, len(pieces[0][1])) if pieces else None

    # --- planning ---
    async def prepare(self, tenant_id: str, req: SynthesisRequest, voice: ResolvedVoice | None = None) -> Prepared:
        """`voice`: the request's voice already resolved (a realtime context resolves it once, not per piece)."""
        if req.format not in A.FORMATS:
            raise InvalidInput("unsupported_format", f"format must be one of {', '.join(A.FORMATS)}")
        if bool(req.text) == bool(req.ssml):
            raise InvalidInput("invalid_request", "give exactly one of text or ssml")
        default = voice or await self.voices.resolve(tenant_id, req.voice_id)
        gain = _gain_db(req.volume)
        mode: Any = req.normalize or self.normalize_default
        shorten = self.shorten_first_segment if req.shorten_first_segment is None else req.shorten_first_segment
        chosen, available = None, {}
        if self.lexicons is not None:
            book = await self.lexicons.book(tenant_id)
            chosen, available = book.select(req.lexicons), book.lexicons
        stage_timing.mark("voice")
        if req.ssml:
            try:
                # lxml parsing and planning of a long document take longer than an event-loop tick
                result = await asyncio.to_thread(parse_ssml, req.ssml, language=req.language, voice_id=None,
                                                 speed=req.speed, pitch=req.pitch, volume_db=gain,
                                                 normalize_mode=mode, lexicons=chosen, available=available,
                                                 shorten_first_segment=shorten)
            except SsmlRejected as exc:
                raise BadRequest(exc.code, exc.message) from None
            except NormalizationUnavailable as exc:
                raise InvalidInput("normalization_unavailable", str(exc)) from None
            if not result.valid:
                first = result.errors[0]
                raise InvalidInput("invalid_ssml", f"line {first.line}, column {first.column}: {first.message}")
            plan = result.plan
        else:
            text = req.text or ""
            if len(text) > MAX_TEXT_CHARS:
                raise InvalidInput("text_too_long", f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
            try:
                plan = await _off_loop_if_long(len(text), plan_text, text, language=req.language, speed=req.speed,
                                               pitch=req.pitch, volume_db=gain, normalize_mode=mode, lexicons=chosen,
                                               shorten_first_segment=shorten)
            except NormalizationUnavailable as exc:
                raise InvalidInput("normalization_unavailable", str(exc)) from None
        if not plan.segments:
            raise InvalidInput("empty_text", "there is nothing to say")
        stage_timing.mark("planned")
        voices: dict[str | None, ResolvedVoice] = {None: default}
        for vid in sorted(plan.voice_ids):
            voices[vid] = await self.voices.resolve(tenant_id, vid)
        for seg in plan.segments:
            voice = voices[seg.voice_id]
            seg.language = _check_language(voice, seg.language)
            seg.text = text_for_engine(seg.text, voice.engine)  # phonemes for Piper, a respelling for XTTS
        engines = sorted({voices[s.voice_id].engine for s in plan.segments if s.text} or {default.engine})
        rate = A.output_rate(req.format, req.sample_rate, NATIVE_RATES[default.engine])
        stage_timing.mark("languages")
        info = await self.engine.model_info()
        versions = {e: (info[e].model_version if e in info else "unknown") for e in engines}
        key_material = {
            "tenant": tenant_id, "engines": versions,
            "voices": {str(k): [v.voice_id, v.version] for k, v in voices.items()},
            "plan": json.loads(plan.canonical_json()), "format": req.format, "rate": rate, "seed": req.seed,
        }
        digest = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()
        stage_timing.mark("prepared")
        return Prepared(
            request=req, plan=plan, voices=voices, fmt=req.format, rate=rate, engine="+".join(engines),
            cache_key=f"{KEY_PREFIX}:{tenant_id}:{default.voice_id}:{digest}", model_versions=versions,
        )


async def _off_loop_if_long(size: int, fn: Callable[..., Plan], *args: Any, **kwargs: Any) -> Plan:
    """Short texts plan faster than a thread hop; long ones go to a worker thread."""
    if size <= INLINE_PLAN_CHARS:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def _check_language(voice: ResolvedVoice, language: str) -> str:
    try:
        return normalise_language(language, voice.engine)
    except ValueError as exc:
        if voice.engine == "piper":
            raise InvalidInput("unsupported_language",
                               f"voice {PIPER_VOICE} speaks English only (got {language!r})") from None
        raise InvalidInput("unsupported_language", str(exc)) from None
