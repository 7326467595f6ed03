"""Deepgram Aura text-to-speech protocol: query options, models, encodings, keys, errors, headers.

Read from the clients (livekit-plugins-deepgram 1.8.9 `tts.py`, pipecat-ai 1.14 `services/deepgram/tts.py`,
deepgram-sdk 7.17 `speak/v1`): the key comes as `Authorization: Token <key>` (the SDK's access tokens as
`bearer <token>`; browsers offer `Sec-WebSocket-Protocol: token, <key>`); every option is a query
parameter (`model`, `encoding`, `sample_rate`, `container`, `bit_rate`, `speed`, `mip_opt_out`, `tag`);
the HTTP body is `{"text": ...}`; LiveKit and Pipecat ask for `container=none` and label the audio with
the rate they asked for. Errors are `{"err_code", "err_msg", "request_id"}`; a refused WebSocket
handshake explains itself in the `dg-error` header (Pipecat reports it). Responses carry
`dg-request-id`, `dg-model-name`, `dg-model-uuid` and `dg-char-count`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import HTTPConnection

from control_plane.errors import ApiError, ErrorResponse, InvalidInput, ServiceError, count_error
from control_plane.services.voice_map import DEEPGRAM_MODEL
from control_plane.services.voices import DEFAULT_VOICE_ALIAS

DEFAULT_MODEL = "aura-asteria-en"  # Deepgram's default when a request names none
MAX_TEXT = 2000  # Deepgram's limit per request (HTTP) and per Speak message
SPEEDS = (0.5, 2.0)  # Deepgram takes 0.7-1.5; our engines 0.5-2.0
# The raw encodings (the socket's) -> our formats; each encoding's default rate as Deepgram has it.
RAW = {"linear16": "pcm", "mulaw": "mulaw", "alaw": "alaw"}
_DEFAULT_RATES = {"linear16": 24000, "mulaw": 8000, "alaw": 8000, "mp3": 22050, "opus": 48000, "flac": 48000}
G711_RATES = (8000, 16000)  # Deepgram's rates for mulaw and alaw
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
UNSUPPORTED_ENCODINGS = ("aac",)
WS_ENCODINGS = tuple(RAW)


class SpeakQuery(BaseModel):
    """The query of POST and WS /v1/speak (names as Deepgram documents them)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(DEFAULT_MODEL, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                       description="An Aura model name (through the tenant's voice map) or one of our voice ids")
    encoding: str | None = Field(None, max_length=16)
    sample_rate: int | None = Field(None, ge=8000, le=48000)
    container: str | None = Field(None, max_length=8)
    bit_rate: int | None = Field(None, ge=0, le=512000)  # accepted: our MP3 is constant-bitrate at one quality
    speed: float | None = Field(None, gt=0, le=4)
    mip_opt_out: bool | None = None  # accepted: nothing is kept for training here
    tag: list[str] | None = None  # accepted: usage is reported per request id
    callback: str | None = Field(None, max_length=2048)
    callback_method: str | None = Field(None, max_length=8)
    language: str | None = Field(None, max_length=16)  # extension: overrides the model name's language

    @property
    def our_speed(self) -> float:
        return 1.0 if self.speed is None else min(max(self.speed, SPEEDS[0]), SPEEDS[1])


class DeepgramError(BaseModel):
    """Deepgram's error body (`code` is the gateway's own code beside Deepgram's `err_code`)."""

    err_code: str
    err_msg: str
    request_id: str
    code: str | None = None


class SpeakBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=MAX_TEXT, examples=["Hello from the gateway."])


@dataclass(frozen=True)
class Output:
    encoding: str
    fmt: str  # ours: pcm, wav, mulaw, alaw, mp3, opus, flac
    rate: int
    content_type: str
    # G.711 at a rate other than 8 kHz: the flow makes s16le at that rate and RawConverter(raw) encodes it
    raw: str | None = None


def output_for(q: SpeakQuery, *, websocket: bool) -> Output:
    """What the encoding/container/sample_rate ask for, or a 400 saying which combination is refused. Over
    HTTP Deepgram wraps linear16 in WAV unless `container=none`; the socket always carries raw samples."""
    encoding = (q.encoding or ("linear16" if websocket else "mp3")).lower()
    container = (q.container or "").lower() or None
    allowed = WS_ENCODINGS if websocket else (*WS_ENCODINGS, "mp3", "opus", "flac")
    if encoding not in allowed:
        reason = "is not available on this server" if encoding in UNSUPPORTED_ENCODINGS else "is not an encoding"
        raise _bad("encoding", f"encoding '{encoding}' {reason}; use one of {', '.join(allowed)}")
    rate = q.sample_rate or _DEFAULT_RATES[encoding]
    if encoding in ("mulaw", "alaw") and rate not in G711_RATES:
        raise _bad("sample_rate", f"{encoding} takes sample_rate {' or '.join(map(str, G711_RATES))}")
    if encoding == "mp3" and rate not in _MP3_RATES:
        raise _bad("sample_rate", f"mp3 takes sample_rate {', '.join(map(str, _MP3_RATES))}")
    if encoding == "opus" and rate not in (8000, 12000, 16000, 24000, 48000):
        raise _bad("sample_rate", "opus takes sample_rate 8000, 12000, 16000, 24000 or 48000")
    if websocket:
        if container not in (None, "none"):
            raise _bad("container", "the socket carries raw audio: container must be none")
        return _raw_output(encoding, rate)
    if encoding == "linear16":
        if container in (None, "wav"):
            return Output(encoding, "wav", rate, "audio/wav")
        if container == "none":
            return Output(encoding, "pcm", rate, _raw_type(encoding, rate))
    elif encoding in RAW:
        if container in (None, "none"):  # Deepgram's default here is a WAV wrapper, which we do not write
            return _raw_output(encoding, rate)
    elif encoding == "opus":
        if container in (None, "ogg"):
            return Output(encoding, "opus", rate, "audio/ogg")
    elif container in (None, "none"):
        return Output(encoding, encoding, rate, "audio/mpeg" if encoding == "mp3" else "audio/flac")
    raise _bad("container", f"container '{container}' is not available for {encoding} "
                            f"({_CONTAINERS[encoding]})")


_CONTAINERS = {"linear16": "use wav or none", "mulaw": "use none", "alaw": "use none", "opus": "use ogg",
               "mp3": "use none", "flac": "use none"}


def _raw_output(encoding: str, rate: int) -> Output:
    """Raw samples; G.711 at 16 kHz comes from s16le at that rate (the flow's own G.711 is 8 kHz)."""
    if encoding in ("mulaw", "alaw") and rate != 8000:
        return Output(encoding, "pcm", rate, _raw_type(encoding, rate), raw=f"pcm_{encoding}")
    return Output(encoding, RAW[encoding], rate, _raw_type(encoding, rate))


def _raw_type(encoding: str, rate: int) -> str:
    return {"linear16": f"audio/l16;rate={rate}", "mulaw": "audio/basic", "alaw": "audio/x-alaw-basic"}[encoding]


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, "INVALID_QUERY_PARAMETER", f"{param}: {message}")


def voice_for(model: str, voice_map: dict[str, str], language: str | None = None) -> tuple[str, str]:
    """(voice id, language) for a `model`: an Aura model name goes through the tenant's map (unmapped: the
    default voice) and speaks its name's language; anything else is one of our voice ids."""
    name = model.strip().lower()
    if DEEPGRAM_MODEL.match(name):
        return voice_map.get(name, DEFAULT_VOICE_ALIAS), language or name.rsplit("-", 1)[1]
    return model.strip(), language or "en"


def model_uuid(model: str) -> str:
    """A stable id per model name (Deepgram reports one; clients log it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tts-gateway:deepgram:{model}"))


def parse_query(params: HTTPConnection) -> SpeakQuery:
    raw: dict[str, Any] = dict(params.query_params)
    tags = params.query_params.getlist("tag")
    raw["tag"] = tags or None
    try:
        return SpeakQuery.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise _bad(".".join(str(p) for p in err["loc"]) or "query", err["msg"]) from None


def api_key(conn: HTTPConnection) -> str:
    """`Authorization: Token <key>` or `Bearer <key>`, else a `token, <key>` WebSocket subprotocol offer."""
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    offered = [p.strip() for p in conn.headers.get("sec-websocket-protocol", "").split(",")]
    if len(offered) >= 2 and offered[0].lower() == "token":
        return offered[1]
    return ""


def offers_token_protocol(conn: HTTPConnection) -> bool:
    return conn.headers.get("sec-websocket-protocol", "").split(",")[0].strip().lower() == "token"


def speak_headers(request_id: str, model: str, characters: int) -> dict[str, str]:
    return {"dg-request-id": request_id, "dg-model-name": model, "dg-model-uuid": model_uuid(model),
            "dg-char-count": str(characters)}


# --- errors ---------------------------------------------------------------------------------------------

_ERR_CODES = {401: "INVALID_AUTH", 402: "ASR_PAYMENT_REQUIRED", 403: "INSUFFICIENT_PERMISSIONS",
              404: "NOT_FOUND", 413: "PAYLOAD_TOO_LARGE", 429: "TOO_MANY_REQUESTS", 503: "SERVICE_UNAVAILABLE"}


def dg_status(exc: ServiceError) -> int:
    return 400 if exc.status_code == 422 else exc.status_code  # Deepgram's status for a request it cannot serve


def dg_code(exc: ServiceError) -> str:
    if exc.code.isupper():
        return exc.code  # already Deepgram's
    return _ERR_CODES.get(exc.status_code, "INTERNAL_SERVER_ERROR" if exc.status_code >= 500 else "Bad Request")


def error_body(exc: ServiceError, request_id: str) -> dict[str, Any]:
    """Deepgram's error shape, with our own code beside it."""
    return {"err_code": dg_code(exc), "err_msg": exc.message, "request_id": request_id, "code": exc.code}


def error_response(conn: HTTPConnection, exc: ServiceError) -> JSONResponse:
    rid = str(getattr(conn.state, "request_id", "") or "")
    headers = {**exc.headers, "dg-error": exc.message.encode("ascii", "replace").decode(), "dg-request-id": rid}
    if rid:
        headers["X-Request-ID"] = rid
    count_error(getattr(getattr(conn.app.state, "services", None), "metrics", None), exc.code, exc)
    return ErrorResponse(error_body(exc, rid), status_code=dg_status(exc), headers=headers)


def text_error(exc: ValidationError | RequestValidationError) -> InvalidInput:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query")) or "body"
    return InvalidInput("INVALID_REQUEST_BODY" if "body" in first.get("loc", ()) else "INVALID_QUERY_PARAMETER",
                        f"{where}: {first.get('msg', 'invalid')}")


class DeepgramRoute(APIRoute):
    """Errors on this route in Deepgram's shape (authentication and rate limits included: they are raised
    by the route's dependencies), invalid input as 400."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def deepgram_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return error_response(request, text_error(exc))
            except ServiceError as exc:
                return error_response(request, exc)

        return deepgram_errors

    def render_error(self, request: Request, exc: ServiceError) -> Response:
        return error_response(request, exc)
