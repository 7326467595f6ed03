"""Cartesia-compatible text to speech over HTTP (protocol details in cartesia_protocol.py).

- `POST /tts/bytes`: the audio. Raw PCM (`pcm_s16le`, `pcm_f32le`, `pcm_mulaw`, `pcm_alaw` at the asked
  rate) and MP3 stream as they are produced; WAV comes whole, with exact sizes in its header.
- `POST /tts/sse`: server-sent events: `chunk` (base64 raw audio), `timestamps` (words, when
  `add_timestamps`), then `done`; a failure after the start is an `error` event.
- The voice is a Cartesia voice id mapped by the tenant (`cartesia:<id>` in the voice map), one of our
  voice ids (cloned or built-in), or else the default voice. `model_id` is accepted; the voice decides
  the engine. Authentication: `X-API-Key`, or a Bearer key (the SDK).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from control_plane.api.audio_responses import speech_headers, streaming_response
from control_plane.api.cartesia_protocol import (
    CONTENT_TYPES,
    CartesiaRoute,
    TTSBody,
    cartesia_key,
    error_event,
    voice_for,
    wav_file,
)
from control_plane.api.deps import Flow, Services, authenticate_key, caller, count_request, with_cancellation
from control_plane.api.raw_audio import RawConverter
from control_plane.errors import InvalidInput, ServiceError, StreamAborted
from control_plane.services.flow import Speech
from control_plane.services.rendering import WordsEvent, WordTiming
from control_plane.services.synthesis import SynthesisRequest
from control_plane.services.tenants import TenantContext

router = APIRouter(tags=["cartesia"], route_class=CartesiaRoute)


async def cartesia_tenant(request: Request, services: Services) -> TenantContext:
    tenant = await authenticate_key(services, cartesia_key(request), request)
    return await count_request(request, services, tenant)


CartesiaTenant = Annotated[TenantContext, Depends(cartesia_tenant)]
AUDIO: dict[int | str, dict[str, Any]] = {200: {"description": "Audio bytes", "content": {t: {} for t in (
    "audio/pcm", "audio/basic", "audio/x-alaw-basic", "audio/wav", "audio/mpeg")}}}


async def request_for(body: TTSBody, tenant: TenantContext, services: Any, fmt: str) -> SynthesisRequest:
    """Our request for a Cartesia body; raw encodings are made from s16le PCM at the asked rate."""
    if not body.text.strip():
        raise InvalidInput("empty_text", "transcript: there is nothing to say")
    voice_id = await voice_for(services.voices, tenant, body.voice_id)
    return SynthesisRequest(text=body.text, voice_id=voice_id, language=body.our_language, speed=body.our_speed,
                            volume=body.our_volume, format=fmt, sample_rate=body.output_format.sample_rate,
                            normalize=body.our_normalize)


async def _raw(speech: Speech, encoding: str) -> AsyncIterator[bytes]:
    converter = RawConverter(encoding)
    try:
        async for item in speech.encoded():
            if isinstance(item, bytes) and item:
                yield converter.convert(item)
    except ServiceError as exc:
        raise StreamAborted(exc.code) from None
    finally:
        await speech.finish()


@router.post("/tts/bytes", summary="Cartesia-compatible: the audio bytes", response_class=Response, responses=AUDIO)
@with_cancellation
async def tts_bytes(request: Request, body: TTSBody, tenant: CartesiaTenant, services: Services,
                    flow: Flow) -> Response:
    of = body.output_format.checked(streaming=False)
    if of.container == "wav":
        fmt = "wav" if of.raw_encoding == "pcm_s16le" else "pcm"
        req = await request_for(body, tenant, services, fmt)
        speech = await flow.open(caller(request, tenant, "cartesia_bytes"), req, streaming=False)
        try:
            audio = await speech.whole()
        finally:
            await speech.finish()
        if fmt == "pcm":
            audio = wav_file(audio, speech.prepared.rate, of.raw_encoding)
        return Response(audio, media_type="audio/wav",
                        headers=speech_headers(speech, duration=speech.stats.audio_seconds))
    fmt = "mp3" if of.container == "mp3" else "pcm"
    req = await request_for(body, tenant, services, fmt)
    speech = await flow.open(caller(request, tenant, "cartesia_bytes"), req, streaming=True)
    if fmt == "mp3":
        return streaming_response(speech, media_type="audio/mpeg")
    return streaming_response(speech, _raw(speech, of.raw_encoding), media_type=CONTENT_TYPES[of.raw_encoding])


def _event(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def timestamps_event(words: list[WordTiming], context_id: str | None) -> dict[str, Any]:
    return {"type": "timestamps", "done": False, "status_code": 206, "context_id": context_id,
            "word_timestamps": {"words": [w.word for w in words], "start": [w.start_s for w in words],
                                "end": [w.end_s for w in words]}}


async def _events(speech: Speech, body: TTSBody) -> AsyncIterator[bytes]:
    converter = RawConverter(body.output_format.raw_encoding)
    cid = body.context_id
    try:
        async for item in speech.encoded():
            if isinstance(item, bytes) and item:
                yield _event({"type": "chunk", "data": base64.b64encode(converter.convert(item)).decode("ascii"),
                              "done": False, "status_code": 206, "step_time": 0.0, "context_id": cid})
            elif isinstance(item, WordsEvent) and body.add_timestamps and item.words:
                yield _event(timestamps_event(item.words, cid))
        yield _event({"type": "done", "done": True, "status_code": 200, "context_id": cid})
    except ServiceError as exc:
        yield _event(error_event(exc, cid, speech.caller.request_id))
    finally:
        await speech.finish()


@router.post("/tts/sse", summary="Cartesia-compatible: server-sent events of audio chunks and word timestamps",
             response_class=StreamingResponse,
             responses={200: {"description": "Server-sent events", "content": {"text/event-stream": {}}}})
async def tts_sse(request: Request, body: TTSBody, tenant: CartesiaTenant, services: Services,
                  flow: Flow) -> StreamingResponse:
    body.output_format.checked(streaming=True)
    req = await request_for(body, tenant, services, "pcm")
    speech = await flow.open(caller(request, tenant, "cartesia_sse"), req, streaming=True)
    return streaming_response(speech, _events(speech, body), media_type="text/event-stream")
