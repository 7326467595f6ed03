"""POST /v1/audio/speech: the OpenAI text-to-speech API, served by our engines.

- `model`: tts-1 and tts-1-hd map to the request's voice engine (piper for built-in voices);
  `piper` and `xtts` are accepted as names too.
- `voice`: OpenAI's names (alloy, echo, fable, onyx, nova, shimmer, ...) map to the default voice;
  anything else is one of our voice ids.
- `response_format`: mp3, opus, flac, wav, pcm (24 kHz s16le like OpenAI's where the engine allows;
  here pcm is the engine's rate); aac is refused with 400.
- `speed`: OpenAI allows 0.25-4.0; ours is 0.5-2.0, so values outside are clamped (not refused).
- `stream_format`: "audio" streams the bytes chunked; "sse" is not supported (400).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from control_plane.api.audio_responses import streaming_response, whole_response
from control_plane.api.deps import Flow, RateLimitedTenant, caller
from control_plane.errors import ApiError
from control_plane.services import audio as A
from control_plane.services.synthesis import SynthesisRequest
from control_plane.services.voices import DEFAULT_VOICE_ALIAS

router = APIRouter(tags=["openai"])

OPENAI_VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"}
FORMATS = {"mp3": "mp3", "opus": "opus", "flac": "flac", "wav": "wav", "pcm": "pcm"}


class SpeechBody(BaseModel):
    model: str = Field("tts-1", examples=["tts-1"], description="tts-1, tts-1-hd, piper or xtts")
    input: str = Field(min_length=1, max_length=4096, examples=["The quick brown fox jumped over the lazy dog."])
    voice: str = Field("alloy", examples=["alloy"], description="An OpenAI voice name or one of our voice ids")
    response_format: str = Field("mp3", examples=["mp3"])
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] | None = Field(None, description="'audio' streams chunked bytes")
    instructions: str | None = Field(None, description="Accepted and ignored")
    language: str = Field("en", description="Extension: the language to speak")
    normalize: Literal["auto", "on", "off"] | None = Field(None, description="Extension: text normalisation")
    lexicons: list[str] | None = Field(None, max_length=10, description="Extension: lexicons to apply (by name)")


@router.post("/v1/audio/speech", summary="OpenAI-compatible speech endpoint", response_class=Response,
             responses={200: {"description": "Audio bytes",
                              "content": {A.FORMATS[f].content_type.split(";")[0]: {} for f in FORMATS.values()}}})
async def speech(request: Request, tenant: RateLimitedTenant, flow: Flow, body: SpeechBody = Body(openapi_examples={
        "basic": {"summary": "OpenAI client defaults", "value": {"model": "tts-1", "input": "Hello world!",
                                                                  "voice": "alloy"}},
        "stream": {"summary": "Streamed WAV", "value": {"model": "tts-1", "input": "Hello world!", "voice": "alloy",
                                                         "response_format": "wav", "stream_format": "audio"}}})
                 ) -> Response:
    if body.model not in ("tts-1", "tts-1-hd", "piper", "xtts", "gpt-4o-mini-tts"):
        raise ApiError(400, "unsupported_model", f"model '{body.model}' is not served here (tts-1, tts-1-hd)")
    fmt = FORMATS.get(body.response_format)
    if fmt is None:
        raise ApiError(400, "unsupported_format",
                       f"response_format '{body.response_format}' is not supported; use {', '.join(FORMATS)}")
    if body.stream_format == "sse":
        raise ApiError(400, "unsupported_stream_format", "stream_format 'sse' is not supported; use 'audio'")
    voice = DEFAULT_VOICE_ALIAS if body.voice.lower() in OPENAI_VOICES else body.voice
    req = SynthesisRequest(text=body.input, voice_id=voice, language=body.language,
                           speed=min(max(body.speed, 0.5), 2.0), format=fmt, normalize=body.normalize,
                           lexicons=body.lexicons)
    streaming = body.stream_format == "audio"
    speech = await flow.open(caller(request, tenant, "openai_speech"), req, streaming=streaming)
    return streaming_response(speech) if streaming else await whole_response(speech)
