"""Cartesia's text-to-speech protocol: the key, the request body, output formats and error shapes.

Read from the clients (livekit-plugins-cartesia 1.8.9, pipecat-ai 1.14 `services/cartesia/tts.py`,
cartesia 4.2): the key comes in `X-API-Key` (LiveKit, Pipecat), `Authorization: Bearer` (the SDK) or
the `api_key` query of a socket; the API version in `Cartesia-Version` or the `cartesia_version` query
(each client pins its own date); the body carries `model_id`, `transcript`, `voice` (`{"mode": "id",
"id"}` or a bare id), `output_format` {container raw|wav|mp3, encoding pcm_s16le|pcm_f32le|pcm_mulaw|
pcm_alaw, sample_rate, bit_rate}, `language`, `speed` / `generation_config` {speed, volume, emotion};
socket messages add `context_id`, `continue`, `flush`, `cancel`, `add_timestamps`, `max_buffer_delay_ms`.
Word timestamps are `{"words", "start", "end"}` in seconds from the start of the context's audio.
Errors carry `title`, `message`, `error_code`, `status_code`, `request_id` (socket messages also `type:
"error"`, `done`, `context_id`, and `error` as older clients read it).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Coroutine
from typing import Any, Literal

import numpy as np
import soundfile as sf
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import HTTPConnection

from control_plane.api.deps import bearer
from control_plane.errors import ApiError, InvalidInput, NotFound, ServiceError, render_error
from control_plane.services.voice_map import vendor_key
from control_plane.services.voices import DEFAULT_VOICE_ALIAS

RATES = (8000, 16000, 22050, 24000, 44100, 48000)
ENCODINGS = ("pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw")
Encoding = Literal["pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"]
CONTENT_TYPES = {"pcm_s16le": "audio/pcm", "pcm_f32le": "audio/pcm", "pcm_mulaw": "audio/basic",
                 "pcm_alaw": "audio/x-alaw-basic"}
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Cartesia's named speeds (the `speed` field, older experimental controls) as our speaking rates.
NAMED_SPEEDS = {"slowest": 0.6, "slow": 0.8, "normal": 1.0, "fast": 1.25, "fastest": 1.5}
MIN_SPEED, MAX_SPEED = 0.5, 2.0
# Cartesia's inline controls (<emotion/>, <speed/>, <volume/>, <break/>, <spell>): accepted, not spoken.
_TAG = re.compile(r"</?(?:spell|emotion|break|volume|speed)\b[^>]*>", re.IGNORECASE)


def cartesia_key(conn: HTTPConnection) -> str:
    """`X-API-Key`, a Bearer key, or (sockets, where a browser cannot set headers) the `api_key` query."""
    return (conn.headers.get("x-api-key", "").strip() or bearer(conn)
            or conn.query_params.get("api_key", "").strip())


def check_version(conn: HTTPConnection) -> None:
    """Any dated API version is served the same way; a malformed one is refused as Cartesia does."""
    version = conn.headers.get("cartesia-version") or conn.query_params.get("cartesia_version")
    if version is not None and not _VERSION.match(version.strip()):
        raise ApiError(400, "invalid_version", f"Cartesia-Version {version[:32]!r} is not a date (YYYY-MM-DD)")


class OutputFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    container: Literal["raw", "wav", "mp3"] = "raw"
    encoding: Encoding | None = Field(None, description="raw and wav: pcm_s16le (default), pcm_f32le, pcm_mulaw, "
                                                        "pcm_alaw")
    sample_rate: int = Field(24000, description=f"One of {', '.join(map(str, RATES))}")
    bit_rate: int | None = Field(None, ge=8000, le=320000, description="mp3: accepted, not applied")

    def checked(self, *, streaming: bool) -> OutputFormat:
        if self.sample_rate not in RATES:
            raise InvalidInput("unsupported_sample_rate",
                               f"output_format.sample_rate {self.sample_rate} is not one of "
                               f"{', '.join(map(str, RATES))}")
        if self.container != "raw" and streaming:
            raise InvalidInput("unsupported_container", "this endpoint streams raw audio: use container 'raw'")
        return self

    @property
    def raw_encoding(self) -> str:
        return self.encoding or "pcm_s16le"


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    speed: float | None = Field(None, gt=0, le=4, description=f"Speaking rate, clamped to {MIN_SPEED}-{MAX_SPEED}")
    volume: float | None = Field(None, ge=0, le=4, description="Linear gain (Cartesia's 0.5-2.0)")
    emotion: str | list[str] | None = Field(None, description="Accepted; our engines speak without emotion control")


class ExperimentalControls(BaseModel):
    model_config = ConfigDict(extra="ignore")

    speed: str | float | None = None  # a named speed, or -1..1 around normal (API 2024-11-13)
    emotion: list[str] | None = None  # accepted, not applied


class Voice(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    mode: Literal["id", "embedding"] = "id"
    id: str | None = Field(None, max_length=64)
    embedding: list[float] | None = Field(None, max_length=1024)
    controls: ExperimentalControls | None = Field(None, alias="__experimental_controls")


class TTSBody(BaseModel):
    """The body of POST /tts/bytes and /tts/sse, and of every generation message on the socket."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    model_id: str = Field("sonic-3", max_length=64, description="Accepted; the voice decides the engine")
    transcript: str = Field(max_length=5000)
    voice: Voice | str = Field(default_factory=Voice, description="{'mode': 'id', 'id': ...} or the id itself")
    output_format: OutputFormat = Field(default_factory=OutputFormat)
    language: str | None = Field(None, max_length=16)
    locale: str | None = Field(None, max_length=16)
    speed: str | float | None = Field(None, description="slow, normal, fast (or a number)")
    generation_config: GenerationConfig | None = None
    normalization: str | None = Field(None, max_length=16, description="auto (default) or off")
    add_timestamps: bool = False
    add_phoneme_timestamps: bool = False  # accepted: no phoneme events are sent
    use_normalized_timestamps: bool = False  # accepted: words are always those of the transcript
    context_id: str | None = Field(None, min_length=1, max_length=128)
    pronunciation_dict_id: str | None = Field(None, max_length=128)  # accepted; lexicons are ours
    save: bool | None = None  # accepted; nothing is stored
    duration: float | None = None  # accepted; not applied
    # Socket-only fields
    continue_: bool = Field(False, alias="continue")
    flush: bool = False
    max_buffer_delay_ms: int | None = Field(None, ge=0, le=5000)

    @property
    def voice_id(self) -> str | None:
        voice = self.voice
        if isinstance(voice, str):
            return voice.strip() or None
        if voice.mode == "embedding":
            raise InvalidInput("unsupported_voice", "voice embeddings are not served here: use {'mode': 'id', "
                                                    "'id': <voice id>}")
        return (voice.id or "").strip() or None

    @property
    def our_language(self) -> str:
        return (self.language or (self.locale or "en").split("-")[0]).lower()

    @property
    def our_speed(self) -> float:
        value: Any = None
        if self.generation_config is not None and self.generation_config.speed:
            value = self.generation_config.speed
        elif isinstance(self.voice, Voice) and self.voice.controls and self.voice.controls.speed is not None:
            value = self.voice.controls.speed
            if isinstance(value, int | float):
                value = 1.0 + 0.5 * max(min(float(value), 1.0), -1.0)
        elif self.speed is not None:
            value = self.speed
        if isinstance(value, str):
            speed = NAMED_SPEEDS.get(value.strip().lower())
            if speed is None:
                raise InvalidInput("invalid_speed", f"speed {value[:16]!r} is not one of {', '.join(NAMED_SPEEDS)}")
            return speed
        return min(max(float(value), MIN_SPEED), MAX_SPEED) if value else 1.0

    @property
    def our_volume(self) -> float:
        gc = self.generation_config
        return gc.volume if gc is not None and gc.volume is not None else 1.0

    @property
    def our_normalize(self) -> str | None:
        return "off" if (self.normalization or "").lower() == "off" else None

    @property
    def text(self) -> str:
        """The transcript without Cartesia's inline control tags (accepted, not spoken)."""
        return _TAG.sub(" ", self.transcript) if "<" in self.transcript else self.transcript


class CancelMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    context_id: str = Field(min_length=1, max_length=128)
    cancel: Literal[True]


def parse_message(raw: Any) -> TTSBody | CancelMessage:
    if not isinstance(raw, dict):
        raise InvalidInput("invalid_message", "messages must be JSON objects")
    try:
        if raw.get("cancel"):
            return CancelMessage.model_validate(raw)
        body = TTSBody.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput("invalid_message", first_error(exc)) from None
    if not body.context_id:
        raise InvalidInput("invalid_message", "context_id: a generation request names its context")
    return body


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"


async def voice_for(voices: Any, tenant: Any, requested: str | None) -> str:
    """The tenant's voice for a Cartesia voice id: its map entry ("cartesia:<id>"), else one of the tenant's
    own or built-in voices by that id, else the default voice (a client's stock Cartesia id speaks)."""
    if not requested:
        return DEFAULT_VOICE_ALIAS
    mapped = tenant.voice_map.get(vendor_key("cartesia", requested))
    if mapped:
        return str(mapped)
    try:
        await voices.get(tenant.tenant_id, requested)
    except NotFound:
        return DEFAULT_VOICE_ALIAS
    return requested


# --- audio ---------------------------------------------------------------------------------------

_WAV_SUBTYPES = {"pcm_s16le": "PCM_16", "pcm_f32le": "FLOAT", "pcm_mulaw": "ULAW", "pcm_alaw": "ALAW"}


def wav_file(pcm: bytes, rate: int, encoding: str) -> bytes:
    """A whole WAV file of s16le PCM in the asked encoding (format tags 1, 3, 7, 6), sizes exact."""
    buf = io.BytesIO()
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    with sf.SoundFile(buf, "w", samplerate=rate, channels=1, format="WAV", subtype=_WAV_SUBTYPES[encoding]) as f:
        f.write(samples)
    return buf.getvalue()


# --- errors --------------------------------------------------------------------------------------

def error_fields(exc: ServiceError, request_id: str) -> dict[str, Any]:
    """Cartesia's members of an error besides `message` (which our error object already has); a request it
    cannot serve as asked (ours: 422) is Cartesia's 400."""
    return {"title": exc.code.replace("_", " ").capitalize(), "error_code": exc.code,
            "status_code": 400 if exc.status_code == 422 else exc.status_code, "request_id": request_id}


def error_event(exc: ServiceError, context_id: str | None, request_id: str) -> dict[str, Any]:
    """An error message on the socket or the SSE stream."""
    return {"type": "error", "context_id": context_id, "done": True, **error_fields(exc, request_id),
            "message": exc.message, "error": exc.message}


class CartesiaRoute(APIRoute):
    """Errors as Cartesia answers them: invalid requests are 400 (ours: 422), and the error object carries
    Cartesia's `title`, `error_code` and `status_code` beside our `code` and `message`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def cartesia_errors(request: Request) -> Response:
            try:
                check_version(request)
                return await handler(request)
            except RequestValidationError as exc:
                errors = exc.errors()
                first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "header"))
                error = ApiError(400, "invalid_request", f"{where or 'request'}: {first.get('msg', 'invalid')}")
                error.fields.update(error_fields(error, str(getattr(request.state, "request_id", ""))))
                raise error from None
            except ServiceError as exc:
                _dialect(request, exc)
                raise

        return cartesia_errors

    @staticmethod
    def api_key(conn: HTTPConnection) -> str:
        return cartesia_key(conn)

    def render_error(self, request: Request, exc: ServiceError) -> Response:
        _dialect(request, exc)
        return render_error(request, exc)


def _dialect(request: Request, exc: ServiceError) -> None:
    if exc.status_code == 422:
        exc.status_code = 400  # Cartesia's status for a request it cannot serve as asked
    for key, value in error_fields(exc, str(getattr(request.state, "request_id", ""))).items():
        exc.fields.setdefault(key, value)
