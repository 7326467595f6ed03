"""OpenAI speech API: request model, voice and model names, error dialect and SSE framing.

What OpenAI's clients rely on (read from openai 3.51, Pipecat's OpenAITTSService, LiveKit's
openai.TTS): `pcm` is 24 kHz s16le mono; the body streams as it is produced; `stream_format="sse"`
answers `text/event-stream` with `speech.audio.delta` events (base64 `audio`) and a final
`speech.audio.done` carrying `usage`; errors are `{"error": {"message", "type", "param", "code"}}`
with the status deciding which exception the SDK raises (400 BadRequestError, 401 AuthenticationError,
404 NotFoundError, 429 RateLimitError, ...).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from control_plane.errors import ApiError, ServiceError, render_error
from control_plane.services.voice_map import OPENAI_VOICES
from control_plane.services.voices import DEFAULT_VOICE_ALIAS

OPENAI_RATE = 24000  # every OpenAI output format carries 24 kHz mono
# response_format -> our format, and the content type OpenAI answers with
FORMATS = {"mp3": ("mp3", "audio/mpeg"), "opus": ("opus", "audio/ogg"), "flac": ("flac", "audio/flac"),
           "wav": ("wav", "audio/wav"), "pcm": ("pcm", "audio/pcm")}
UNSUPPORTED_FORMATS = ("aac",)
# OpenAI's model names, with or without a date suffix (gpt-4o-mini-tts-2025-12-15); our engine names too.
MODEL_NAME = re.compile(r"^(tts-1|tts-1-hd|gpt-4o-mini-tts|gpt-4o-tts)(-\d{4}-\d{2}-\d{2})?$|^(piper|xtts)$")


class VoiceRef(BaseModel):
    """OpenAI's custom-voice object; here `id` is one of the tenant's voice ids."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)


class SpeechBody(BaseModel):
    model: str = Field("tts-1", max_length=64, examples=["tts-1"],
                       description="tts-1, tts-1-hd, gpt-4o-mini-tts (date suffixes accepted), piper or xtts; "
                                   "the voice decides the engine")
    input: str = Field(min_length=1, max_length=4096, examples=["The quick brown fox jumped over the lazy dog."])
    voice: str | VoiceRef = Field("alloy", examples=["alloy", {"id": "5b0c7a52-8d2e-4c1f-9a7e-1f0f3c2b9d10"}],
                                  description="An OpenAI voice name (through the tenant's voice map), "
                                              "{\"id\": <voice id>}, or a voice id")
    response_format: str = Field("mp3", examples=["mp3"], description="mp3, opus, flac, wav or pcm (24 kHz s16le)")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="Clamped to the engines' 0.5-2.0")
    stream_format: Literal["audio", "sse"] = Field("audio", description="'audio': the bytes, chunked as produced; "
                                                                        "'sse': speech.audio.delta/done events")
    instructions: str | None = Field(None, max_length=4096, description="Accepted and ignored")
    language: str = Field("en", max_length=16, description="Extension: the language to speak")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Extension: XTTS sampling seed")
    normalize: Literal["auto", "on", "off"] | None = Field(None, description="Extension: text normalisation")
    lexicons: list[str] | None = Field(None, max_length=10, description="Extension: lexicons to apply (by name)")


def check_model(model: str) -> None:
    if not MODEL_NAME.match(model):
        raise ApiError(400, "model_not_found", f"model '{model}' is not served here "
                                               "(tts-1, tts-1-hd, gpt-4o-mini-tts)", fields={"param": "model"})


def our_format(response_format: str) -> tuple[str, str]:
    """(our format name, OpenAI's content type) for a response_format."""
    found = FORMATS.get(response_format)
    if found is None:
        reason = "is not available on this server" if response_format in UNSUPPORTED_FORMATS else "is not a format"
        raise ApiError(400, "unsupported_format",
                       f"response_format '{response_format}' {reason}; use one of {', '.join(FORMATS)}",
                       fields={"param": "response_format"})
    return found


def voice_id_for(voice: str | VoiceRef, voice_map: dict[str, str]) -> str:
    """An OpenAI name goes through the tenant's map (unmapped: the default voice); {"id"} and any other
    string are voice ids."""
    if isinstance(voice, VoiceRef):
        return voice.id
    name = voice.strip().lower()
    if name in OPENAI_VOICES:
        return voice_map.get(name, DEFAULT_VOICE_ALIAS)
    return voice


# --- errors ---------------------------------------------------------------------------------------------

def _error_type(status: int) -> str:
    named = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
    return named.get(status, "server_error" if status >= 500 else "invalid_request_error")


def _param(loc: Any) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


class OpenAIRoute(APIRoute):
    """Errors in OpenAI's dialect on this route: `type` and `param` beside our `code` and `message`, and
    invalid parameters (ours: 422) as 400, OpenAI's status for them, so the SDKs raise BadRequestError."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = exc.errors()
                first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
                param = _param(first.get("loc", ()))
                raise ApiError(400, "invalid_request", f"{param or 'request'}: {first.get('msg', 'invalid')}",
                               fields={"type": "invalid_request_error", "param": param}) from None
            except ServiceError as exc:
                _dialect(exc)
                raise

        return openai_errors

    def render_error(self, request: Request, exc: ServiceError) -> Response:
        _dialect(exc)
        return render_error(request, exc)


def _dialect(exc: ServiceError) -> None:
    if exc.status_code == 422:
        exc.status_code = 400  # OpenAI's status for a request it cannot serve as asked
    exc.fields.setdefault("type", _error_type(exc.status_code))
    exc.fields.setdefault("param", None)


# --- server-sent events ---------------------------------------------------------------------------------

def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def sse_events(audio: AsyncIterator[bytes], characters: int) -> AsyncIterator[bytes]:
    """The audio stream as speech.audio.delta events, then speech.audio.done. Usage counts what this
    gateway bills: characters, reported as input tokens (there are no output tokens to count)."""
    try:
        async for chunk in audio:
            if chunk:
                yield sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")})
        yield sse_event({"type": "speech.audio.done",
                         "usage": {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters}})
    finally:
        aclose = getattr(audio, "aclose", None)
        if aclose is not None:
            await aclose()  # a client that leaves early cancels the synthesis underneath
