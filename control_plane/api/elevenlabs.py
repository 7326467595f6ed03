"""ElevenLabs-compatible text to speech over HTTP (protocol details in elevenlabs_protocol.py).

- `POST /v1/text-to-speech/{voice_id}`: the whole file; `/stream`: written as produced;
  `/with-timestamps`: JSON with base64 audio and per-character alignment; `/stream/with-timestamps`:
  one JSON object per line, each an audio chunk and the characters timed so far.
- `voice_id` is one of our voice ids (a tenant's cloned voice or a built-in one); `model_id` is
  accepted and the voice decides the engine. Authentication: `xi-api-key` or a Bearer key.
- `GET /v1/models`: our engines in ElevenLabs' model shape. `GET /v1/voices` is our own list, whose
  entries also carry ElevenLabs' `category` and `labels` (see voices.py); `GET /v2/voices` is the same.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from control_plane.api.audio_responses import speech_headers, streaming_response
from control_plane.api.deps import Flow, RateLimitedTenant, caller, with_cancellation
from control_plane.api.elevenlabs_protocol import (
    CharacterAligner,
    OutputFormat,
    TextToSpeechBody,
    alignment_json,
    parse_output_format,
)
from control_plane.errors import ServiceError, StreamAborted
from control_plane.services.engines import ENGINES
from control_plane.services.flow import Speech
from control_plane.services.rendering import WordsEvent, WordTiming
from control_plane.services.synthesis import SynthesisRequest

router = APIRouter(tags=["elevenlabs"])

VoiceId = Annotated[str, Path(min_length=1, max_length=64, description="One of our voice ids")]
OutputFormatQuery = Annotated[str | None, Query(max_length=32, description="e.g. mp3_44100_128 (default), "
                                                                            "pcm_24000, ulaw_8000")]
# Accepted so that the clients' URLs are valid; they change nothing here.
LatencyQuery = Annotated[int | None, Query(ge=0, le=4, description="Accepted; streaming is always immediate")]
LoggingQuery = Annotated[bool, Query(description="Accepted; request text is never logged")]
AUDIO: dict[int | str, dict[str, Any]] = {200: {"description": "Audio bytes", "content": {t: {} for t in (
    "audio/mpeg", "audio/pcm", "audio/basic", "audio/x-alaw-basic", "audio/ogg", "audio/wav")}}}


async def _open(request: Request, tenant: Any, flow: Any, voice_id: str, body: TextToSpeechBody,
                output_format: str | None, endpoint: str, *, streaming: bool) -> tuple[Speech, OutputFormat]:
    of = parse_output_format(output_format)
    req = SynthesisRequest(text=body.text, voice_id=voice_id, language=body.language_code or "en",
                           speed=body.speed, format=of.fmt, sample_rate=of.rate, seed=body.our_seed,
                           normalize=body.apply_text_normalization)
    return await flow.open(caller(request, tenant, endpoint), req, streaming=streaming), of


@router.post("/v1/text-to-speech/{voice_id}", summary="ElevenLabs-compatible: the whole file",
             response_class=Response, responses=AUDIO)
@with_cancellation
async def convert(request: Request, voice_id: VoiceId, body: TextToSpeechBody, tenant: RateLimitedTenant,
                  flow: Flow, output_format: OutputFormatQuery = None, optimize_streaming_latency: LatencyQuery = None,
                  enable_logging: LoggingQuery = True) -> Response:
    speech, of = await _open(request, tenant, flow, voice_id, body, output_format, "elevenlabs_tts", streaming=False)
    try:
        audio = await speech.whole()
    finally:
        await speech.finish()
    return Response(audio, media_type=of.content_type,
                    headers=speech_headers(speech, duration=speech.stats.audio_seconds))


@router.post("/v1/text-to-speech/{voice_id}/stream", summary="ElevenLabs-compatible: streamed as produced",
             response_class=StreamingResponse, responses=AUDIO)
async def stream(request: Request, voice_id: VoiceId, body: TextToSpeechBody, tenant: RateLimitedTenant, flow: Flow,
                 output_format: OutputFormatQuery = None, optimize_streaming_latency: LatencyQuery = None,
                 enable_logging: LoggingQuery = True) -> StreamingResponse:
    speech, of = await _open(request, tenant, flow, voice_id, body, output_format, "elevenlabs_stream",
                             streaming=True)
    return streaming_response(speech, media_type=of.content_type)


def _alignment(chars: tuple[list[str], list[float], list[float]]) -> dict[str, list] | None:
    return alignment_json(*chars) if chars[0] else None


@router.post("/v1/text-to-speech/{voice_id}/with-timestamps",
             summary="ElevenLabs-compatible: base64 audio with per-character timing")
@with_cancellation
async def with_timestamps(request: Request, voice_id: VoiceId, body: TextToSpeechBody, tenant: RateLimitedTenant,
                          flow: Flow, output_format: OutputFormatQuery = None,
                          optimize_streaming_latency: LatencyQuery = None,
                          enable_logging: LoggingQuery = True) -> JSONResponse:
    speech, _ = await _open(request, tenant, flow, voice_id, body, output_format, "elevenlabs_timestamps",
                            streaming=False)
    try:
        audio = await speech.whole()
    finally:
        await speech.finish()
    aligner = CharacterAligner(body.text)
    timed = aligner.words(speech.words)
    rest = aligner.finish(speech.stats.audio_seconds)
    alignment = _alignment((timed[0] + rest[0], timed[1] + rest[1], timed[2] + rest[2]))
    return JSONResponse({"audio_base64": base64.b64encode(audio).decode("ascii"), "alignment": alignment,
                         "normalized_alignment": alignment},
                        headers=speech_headers(speech, duration=speech.stats.audio_seconds))


def _line(audio: bytes, chars: tuple[list[str], list[float], list[float]]) -> bytes:
    alignment = _alignment(chars)
    payload = {"audio_base64": base64.b64encode(audio).decode("ascii"), "alignment": alignment,
               "normalized_alignment": alignment}
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


async def _timed_lines(speech: Speech, text: str) -> AsyncIterator[bytes]:
    """Each audio chunk with the characters whose words are known by then; the rest with the last line."""
    aligner = CharacterAligner(text)
    words: list[WordTiming] = []
    try:
        async for item in speech.encoded():
            if isinstance(item, WordsEvent):
                words.extend(item.words)
            elif isinstance(item, bytes):
                yield _line(item, aligner.words(words))
                words = []
        timed = aligner.words(words)
        rest = aligner.finish(speech.stats.audio_seconds)
        chars = (timed[0] + rest[0], timed[1] + rest[1], timed[2] + rest[2])
        if chars[0]:
            yield _line(b"", chars)
    except ServiceError as exc:
        raise StreamAborted(exc.code) from None
    finally:
        await speech.finish()


@router.post("/v1/text-to-speech/{voice_id}/stream/with-timestamps",
             summary="ElevenLabs-compatible: streamed JSON lines of audio and per-character timing",
             response_class=StreamingResponse,
             responses={200: {"description": "One JSON object per line", "content": {"application/x-ndjson": {}}}})
async def stream_with_timestamps(request: Request, voice_id: VoiceId, body: TextToSpeechBody,
                                 tenant: RateLimitedTenant, flow: Flow, output_format: OutputFormatQuery = None,
                                 optimize_streaming_latency: LatencyQuery = None,
                                 enable_logging: LoggingQuery = True) -> StreamingResponse:
    speech, _ = await _open(request, tenant, flow, voice_id, body, output_format, "elevenlabs_stream_timestamps",
                            streaming=True)
    return streaming_response(speech, _timed_lines(speech, body.text), media_type="application/x-ndjson")


def _model(engine: str) -> dict[str, Any]:
    info = ENGINES[engine]
    return {"model_id": engine, "name": engine, "description": info["description"], "can_do_text_to_speech": True,
            "can_do_voice_conversion": False, "can_be_finetuned": False, "can_use_style": False,
            "can_use_speaker_boost": False, "maximum_text_length_per_request": 5000,
            "languages": [{"language_id": code, "name": code} for code in info["languages"]]}


@router.get("/v1/models", summary="ElevenLabs-compatible: the engines, as models")
async def models(tenant: RateLimitedTenant) -> list[dict[str, Any]]:
    return [_model(engine) for engine in ENGINES]
