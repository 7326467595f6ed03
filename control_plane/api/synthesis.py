"""POST /v1/synthesize (whole body), and the request flow the streaming endpoints share.

Flow for every synthesis endpoint: auth + rate limit (dependencies) → plan (SSML or text) and
voice resolution → monthly characters charged → cache lookup → render from Triton (or serve the
cached bytes) → usage recorded, whatever the outcome, and metrics observed. Headers:
`X-Audio-Duration` (s), `X-Cache` (HIT|MISS), `X-Request-ID`, `X-Voice-Version`, `X-Sample-Rate`,
`X-Characters`, `X-Marks` (JSON [[name, seconds], ...] when the SSML has marks).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from control_plane.api.deps import get_services, get_tenant, rate_limited
from control_plane.errors import ApiError, StreamAborted
from control_plane.services import audio as A
from control_plane.services.synthesis import MarkEvent, Prepared, RenderStats, SynthesisRequest

log = logging.getLogger(__name__)
router = APIRouter(tags=["synthesis"])

Format = Literal["wav", "mp3", "ogg", "opus", "vorbis", "flac", "pcm", "mulaw", "alaw"]


class SynthesizeBody(BaseModel):
    text: str | None = Field(None, max_length=5000, description="Plain text (or give ssml)",
                             examples=["Hello! This is the TTS Gateway."])
    ssml: str | None = Field(None, max_length=20000, description="SSML document (or give text)")
    voice_id: str = Field("en-US-generic", description="A voice id from GET /v1/voices",
                          examples=["en-US-generic"])
    language: str = Field("en", max_length=16, examples=["en"])
    speed: float = Field(1.0, ge=0.5, le=2.0)
    pitch: float = Field(1.0, ge=0.5, le=2.0, description="Pitch factor; 1.0 leaves the voice untouched")
    volume: float = Field(1.0, ge=0.0, le=2.0, description="Linear gain; 1.0 unchanged, 0 silent")
    format: Format = Field("wav", description="mulaw/alaw are raw G.711 at 8 kHz (telephony)")
    sample_rate: int | None = Field(None, ge=8000, le=48000,
                                    description="Output rate; default the engine's (Opus snaps to 8/12/16/24/48 kHz)")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="XTTS sampling seed for repeatable output")
    normalize: Literal["auto", "on", "off"] | None = Field(
        None, description="Write out numbers, dates, amounts, codes... before synthesis (default: the server's "
        "TTS_NORMALIZE_DEFAULT, normally auto); SSML say-as always wins")
    lexicons: list[str] | None = Field(None, max_length=10, description="Your lexicons (by name) to apply, "
                                       "besides those applied by default")

    def to_request(self) -> SynthesisRequest:
        return SynthesisRequest(**self.model_dump())


EXAMPLES: dict[str, Any] = {
    "text": {"summary": "Plain text, WAV", "value": {"text": "Hello! This is the TTS Gateway.", "format": "wav"}},
    "ssml": {"summary": "SSML with a break and a mark, MP3", "value": {
        "ssml": '<speak>Hello <break time="300ms"/> there.<mark name="end"/></speak>', "format": "mp3"}},
    "telephony": {"summary": "μ-law 8 kHz for telephony", "value": {"text": "Your code is 4 2 7.",
                                                                      "format": "mulaw"}},
}


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None) or request.headers.get("x-request-id")
    return str(rid or uuid.uuid4())


async def record_usage(services: Any, tenant: Any, *, request_id: str, endpoint: str, engine: str | None,
                       voice_id: str | None, characters: int, audio_seconds: float, cache_hit: bool,
                       started: float, status: int) -> None:
    """Usage for every request, errors included; recording never fails the request."""
    try:
        from control_plane.services.usage import UsageRecord

        rec = UsageRecord(tenant_id=tenant.tenant_id, request_id=request_id, endpoint=endpoint, engine=engine,
                          voice_id=voice_id, characters=characters, audio_seconds=round(audio_seconds, 4),
                          cache_hit=cache_hit, latency_ms=int((time.perf_counter() - started) * 1000),
                          status_code=status)
        result = services.usage.record(rec)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        log.warning("usage record failed: %s", type(exc).__name__)


def observe(services: Any, prepared: Prepared | None, stats: RenderStats | None, *, cache_hit: bool | None,
            error_code: str | None = None) -> None:
    m = getattr(services, "metrics", None)
    if m is None:
        return
    engine = prepared.engine if prepared else "none"
    with contextlib.suppress(Exception):
        if stats is not None and stats.samples:
            m.audio_seconds.labels(engine=engine).inc(stats.audio_seconds)
            if stats.first_audio_s is not None and not cache_hit:
                m.time_to_first_audio.labels(engine=engine).observe(stats.first_audio_s)
        if error_code:
            m.errors.labels(code=error_code).inc()


async def _charge(services: Any, tenant: Any, characters: int) -> None:
    if characters:
        await services.limiter.charge_characters(tenant, characters)


def _headers(prepared: Prepared, *, cache: str, duration: float | None, marks: list[list[Any]] | None,
             request_id: str) -> dict[str, str]:
    h = {"X-Cache": cache, "X-Request-ID": request_id, "X-Voice-Version": str(prepared.default_voice.version),
         "X-Sample-Rate": str(prepared.rate), "X-Characters": str(prepared.characters),
         "X-Engine": prepared.engine}
    if duration is not None:
        h["X-Audio-Duration"] = f"{duration:.3f}"
    if marks:
        h["X-Marks"] = json.dumps(marks, separators=(",", ":"))
    return h


async def synthesize_whole(request: Request, tenant: Any, services: Any, req: SynthesisRequest,
                           endpoint: str) -> Response:
    started = time.perf_counter()
    rid = request_id_of(request)
    prepared: Prepared | None = None
    stats: RenderStats | None = None
    hit = False
    try:
        prepared = await services.synthesis.prepare(tenant.tenant_id, req)
        await _charge(services, tenant, prepared.characters)
        entry = await services.synthesis.cached(prepared)
        if entry is not None:
            hit = True
            stats = RenderStats(samples=int(round(entry.meta.get("duration_s", 0) * prepared.rate)), rate=prepared.rate)
            body, marks, duration = entry.audio, entry.meta.get("marks"), entry.meta.get("duration_s")
        else:
            body, stats = await services.synthesis.synthesize(prepared, rid)
            await services.synthesis.store(prepared, body, stats)
            marks, duration = [[m.name, m.time_s] for m in stats.marks], stats.audio_seconds
    except ApiError as exc:
        observe(services, prepared, None, cache_hit=None, error_code=exc.code)
        await record_usage(services, tenant, request_id=rid, endpoint=endpoint,
                           engine=prepared.engine if prepared else None, voice_id=req.voice_id, characters=0,
                           audio_seconds=0.0, cache_hit=False, started=started, status=exc.status_code)
        raise
    observe(services, prepared, stats, cache_hit=hit)
    await record_usage(services, tenant, request_id=rid, endpoint=endpoint, engine=prepared.engine,
                       voice_id=req.voice_id, characters=prepared.characters, audio_seconds=stats.audio_seconds,
                       cache_hit=hit, started=started, status=200)
    return Response(content=body, media_type=prepared.content_type,
                    headers=_headers(prepared, cache="HIT" if hit else "MISS", duration=duration, marks=marks,
                                     request_id=rid))


def _rechunk(source: AsyncIterator[bytes], chunk_size: int | None, delay_ms: int) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        buf = bytearray()
        first = True
        async for data in source:
            if not chunk_size:
                if delay_ms and not first:
                    await asyncio.sleep(delay_ms / 1000)
                first = False
                yield data
                continue
            buf.extend(data)
            while len(buf) >= chunk_size:
                if delay_ms and not first:
                    await asyncio.sleep(delay_ms / 1000)
                first = False
                yield bytes(buf[:chunk_size])
                del buf[:chunk_size]
        if buf:
            if delay_ms and not first:
                await asyncio.sleep(delay_ms / 1000)
            yield bytes(buf)

    return gen()


async def open_stream_slot(services: Any, tenant: Any) -> contextlib.AsyncExitStack:
    """Hold a concurrent-stream slot (429 when full) and count the stream; released when the stream ends."""
    stack = contextlib.AsyncExitStack()
    try:
        await stack.enter_async_context(services.limiter.stream_slot(tenant))
        tracker = getattr(services, "streams", None)
        track = getattr(tracker, "track", None)
        if track is not None:
            await stack.enter_async_context(track())
    except BaseException:
        await stack.aclose()
        raise
    return stack


async def synthesize_streaming(request: Request, tenant: Any, services: Any, req: SynthesisRequest, endpoint: str,
                               chunk_size: int | None = None, chunk_delay_ms: int = 0) -> StreamingResponse:
    """Chunked response written as audio is produced; a disconnect cancels the Triton request."""
    started = time.perf_counter()
    rid = request_id_of(request)
    try:
        prepared = await services.synthesis.prepare(tenant.tenant_id, req)
        stack = await open_stream_slot(services, tenant)
    except ApiError as exc:
        observe(services, None, None, cache_hit=None, error_code=exc.code)
        await record_usage(services, tenant, request_id=rid, endpoint=endpoint, engine=None, voice_id=req.voice_id,
                           characters=0, audio_seconds=0.0, cache_hit=False, started=started, status=exc.status_code)
        raise
    try:
        await _charge(services, tenant, prepared.characters)
        entry = await services.synthesis.cached(prepared)
    except BaseException:
        await stack.aclose()
        raise
    hit = entry is not None

    async def body() -> AsyncIterator[bytes]:
        status, stats, sent = 200, RenderStats(rate=prepared.rate), False
        try:
            if entry is not None:
                stats.samples = int(round(entry.meta.get("duration_s", 0) * prepared.rate))
                yield entry.audio
                return
            rendering = services.synthesis.render(prepared, rid)
            stats = rendering.stats
            streamed: list[bytes] = []
            async for item in rendering.encoded():
                if isinstance(item, MarkEvent):
                    continue
                streamed.append(item)
                sent = True
                yield item
            cacheable = _cacheable(prepared, streamed)
            if cacheable is not None:
                await services.synthesis.store(prepared, cacheable, stats)
        except ApiError as exc:
            # Headers are gone: the error is counted, recorded and logged, and the body is cut off.
            status = exc.status_code
            observe(services, prepared, None, cache_hit=None, error_code=exc.code)
            log.warning("stream failed after %s: %s", "audio" if sent else "headers", exc.code)
            raise StreamAborted(exc.code) from None
        except BaseException:
            status = 499  # client went away (or the server is stopping): the Triton request was cancelled
            raise
        finally:
            await stack.aclose()
            if status == 200:
                observe(services, prepared, stats, cache_hit=hit)
            await record_usage(services, tenant, request_id=rid, endpoint=endpoint, engine=prepared.engine,
                               voice_id=req.voice_id, characters=prepared.characters,
                               audio_seconds=stats.audio_seconds, cache_hit=hit, started=started, status=status)

    headers = _headers(prepared, cache="HIT" if hit else "MISS",
                       duration=entry.meta.get("duration_s") if entry else None, marks=None, request_id=rid)
    headers["Cache-Control"] = "no-store"
    return StreamingResponse(_rechunk(body(), chunk_size, chunk_delay_ms), media_type=prepared.content_type,
                             headers=headers)


def _cacheable(prepared: Prepared, streamed: list[bytes]) -> bytes | None:
    """The streamed bytes as a whole file for the cache: WAV gets its real sizes. A streamed FLAC leaves
    its length open, which some readers reject in a file, so it is not cached from a stream."""
    data = b"".join(streamed)
    if prepared.fmt == "wav":
        pcm = data[44:]
        return A.wav_header(prepared.rate, len(pcm)) + pcm
    return None if prepared.fmt == "flac" else data


@router.post("/v1/synthesize", summary="Synthesise speech and return the whole file",
             dependencies=[Depends(rate_limited)], response_class=Response,
             responses={200: {"content": {spec.content_type.split(";")[0]: {} for spec in A.FORMATS.values()},
                              "description": "Audio in the requested format"}})
async def synthesize(request: Request, body: SynthesizeBody = Body(openapi_examples=EXAMPLES),
                     tenant=Depends(get_tenant), services=Depends(get_services)) -> Response:
    return await synthesize_whole(request, tenant, services, body.to_request(), "synthesize")
