"""WS /v1/synthesize/ws: text in as it is written, audio out as it is synthesised (protocol version 2).

Auth: `Authorization: Bearer <key>` on the upgrade request, or `?api_key=<key>` for clients
(browsers) that cannot set headers; the query form puts the key in access logs of proxies, so prefer
the header. The socket is read all the time, also while audio is being sent, so `clear` acts at once.
Client messages (JSON text frames; `context_id` is optional on every one):

    {"type": "start", "voice_id": "...", "language": "en", "format": "pcm", "sample_rate": 16000,
     "speed": 1.0, "pitch": 1.0, "volume": 1.0, "seed": null, "inactivity_timeout": 60}
    {"type": "text", "text": "Hello there. How"}   complete sentences are synthesised at once
    {"type": "mark", "name": "m1"}                  a mark at this point of the text
    {"type": "flush"}                               synthesise what is buffered; answered by "flushed"
    {"type": "clear"}                               barge-in: stop now, drop the text; answered by "cleared"
    {"type": "end"} / {"type": "close"}             with context_id: finish that context ("done");
                                                    without: finish every context, then close the socket

Server messages: {"type": "started", "format", "sample_rate", "content_type", "request_id"}; audio of
the default context (no context_id) as binary frames of one continuous stream of its format, audio of
a named context as {"type": "audio", "context_id", "audio": base64}; {"type": "words", "words":
[{"word", "start", "end", "char_start", "char_end"}]} (seconds of the context's audio, offsets in its
text); {"type": "mark", "name", "time_s"}; "flushed", "cleared"; {"type": "done", "audio_seconds",
"characters"}; {"type": "error", "code", "message"} (with "retry_after_s" when the engine is at capacity:
retry the utterance then). Errors of a named context leave the socket open;
any other error closes it. Every server message of a named context carries its `context_id`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

from control_plane.api.deps import authenticate_key
from control_plane.errors import ApiError, InvalidInput, ServiceError, ws_close_code
from control_plane.services.flow import Caller, Outcome
from control_plane.services.realtime import Context, ContextSettings, RealtimeSession
from control_plane.services.rendering import WordTiming
from control_plane.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(tags=["synthesis"])

WS_FORMATS = ("pcm", "wav", "mulaw", "alaw", "mp3", "opus", "ogg")
PROTOCOL_VERSION = 2


class StartMessage(BaseModel):
    type: str
    context_id: str | None = Field(None, min_length=1, max_length=64)
    voice_id: str = "en-US-generic"
    language: str = "en"
    format: str = Field("pcm")
    sample_rate: int | None = Field(None, ge=8000, le=48000)
    speed: float = Field(1.0, ge=0.5, le=2.0)
    pitch: float = Field(1.0, ge=0.5, le=2.0)
    volume: float = Field(1.0, ge=0.0, le=2.0)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    normalize: Literal["auto", "on", "off"] | None = None
    lexicons: list[str] | None = Field(None, max_length=10)
    inactivity_timeout: float | None = Field(None, ge=1, le=600)

    def settings(self) -> ContextSettings:
        if self.format not in WS_FORMATS:
            raise InvalidInput("unsupported_format", f"format must be one of {', '.join(WS_FORMATS)}")
        return ContextSettings(voice_id=self.voice_id, language=self.language, format=self.format,
                               sample_rate=self.sample_rate, speed=self.speed, pitch=self.pitch,
                               volume=self.volume, seed=self.seed, normalize=self.normalize,
                               lexicons=self.lexicons)


class ClientGone(Exception):
    """The client closed the connection."""


class WsSink:
    """Our framing of a realtime session's events; one send at a time."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.fatal: ServiceError | None = None  # an error of the default context: the socket closes

    async def _json(self, ctx: Context | None, message: dict[str, Any]) -> None:
        if ctx is not None and ctx.context_id is not None:
            message["context_id"] = ctx.context_id
        async with self.lock:
            await self.ws.send_json(message)

    async def started(self, ctx: Context) -> None:
        from control_plane.services import audio as A

        await self._json(ctx, {"type": "started", "request_id": ctx.request_id, "format": ctx.fmt,
                               "sample_rate": ctx.rate, "content_type": A.FORMATS[ctx.fmt].content_type,
                               "protocol": PROTOCOL_VERSION})

    async def audio(self, ctx: Context, data: bytes) -> None:
        if ctx.cancelled:
            return
        if ctx.context_id is None:
            async with self.lock:
                await self.ws.send_bytes(data)
        else:
            await self._json(ctx, {"type": "audio", "audio": base64.b64encode(data).decode()})

    async def mark(self, ctx: Context, name: str, time_s: float) -> None:
        await self._json(ctx, {"type": "mark", "name": name, "time_s": time_s})

    async def words(self, ctx: Context, words: list[WordTiming]) -> None:
        await self._json(ctx, {"type": "words", "words": [
            {"word": w.word, "start": w.start_s, "end": w.end_s, "char_start": w.char_start, "char_end": w.char_end}
            for w in words]})

    async def flushed(self, ctx: Context) -> None:
        await self._json(ctx, {"type": "flushed"})

    async def cleared(self, ctx: Context) -> None:
        await self._json(ctx, {"type": "cleared"})

    async def done(self, ctx: Context, outcome: Outcome) -> None:
        await self._json(ctx, {"type": "done", "request_id": ctx.request_id,
                               "audio_seconds": round(outcome.audio_seconds, 4), "characters": outcome.characters})

    async def context_error(self, context_id: str, exc: ServiceError) -> None:
        """An error about a named context (one that may not exist, or failed to open)."""
        with contextlib.suppress(Exception):
            async with self.lock:
                await self.ws.send_json({"type": "error", "code": exc.code, "message": exc.message,
                                         "context_id": context_id, **exc.fields})

    async def error(self, ctx: Context | None, exc: ServiceError) -> None:
        with contextlib.suppress(Exception):
            await self._json(ctx, {"type": "error", "code": exc.code, "message": exc.message,
                                   "request_id": ctx.request_id if ctx else None, **exc.fields})
        if ctx is None or ctx.context_id is None:
            self.fatal = exc


async def receive_json(ws: WebSocket, not_json: ServiceError) -> Any:
    """The client's next message, parsed; ClientGone when it has closed, `not_json` (each protocol its own
    status) for one that is not JSON."""
    try:
        raw = await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        raise ClientGone() from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise not_json from None


async def read_until_closed(reader: asyncio.Task[None], session: RealtimeSession) -> None:
    """Wait until the client's messages end (`reader` returns or raises) or the session closes (every
    context finished after a close request); raises what ended the reading. `reader` stays the caller's
    to cancel."""
    ended = asyncio.create_task(session.wait_closed())
    try:
        done, _ = await asyncio.wait({reader, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    if reader in done:
        reader.result()


async def close_after(ws: WebSocket, exc: ServiceError) -> None:
    """Close the socket for a service error: normally after an inactivity timeout, else with its code."""
    with contextlib.suppress(Exception):
        await ws.close(1000 if exc.code == "inactivity_timeout" else ws_close_code(exc))


async def _receive(ws: WebSocket) -> dict[str, Any]:
    msg = await receive_json(ws, ApiError(400, "invalid_message", "messages must be JSON objects"))
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ApiError(400, "invalid_message", "messages must be JSON objects with a 'type'")
    return msg


def _start(msg: dict[str, Any]) -> tuple[StartMessage, ContextSettings]:
    try:
        start = StartMessage.model_validate(msg)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInput("validation_error", f"{field}: {err['msg']}") from None
    return start, start.settings()


class Connection:
    """Reads the socket without pause and turns each message into a session call at once."""

    def __init__(self, ws: WebSocket, services: AppState, sink: WsSink) -> None:
        self.ws, self.services, self.sink = ws, services, sink
        self.settings = services.settings
        self.session: RealtimeSession | None = None
        self.inactivity_s = float(self.settings.ws_inactivity_timeout_s)
        self.ending = False

    async def open(self, tenant: Any, request_id: str) -> None:
        first = await _receive(self.ws)
        if first["type"] != "start":
            raise ApiError(400, "invalid_message", "the first message must be {\"type\": \"start\", ...}")
        start, settings = _start(first)
        self.inactivity_s = start.inactivity_timeout or self.inactivity_s
        caller = Caller(tenant=tenant, endpoint="synthesize_ws", request_id=request_id)
        self.session = RealtimeSession(self.services.flow, caller, self.sink,
                                       max_contexts=self.settings.ws_max_contexts)
        await self.session.open_context(start.context_id, settings)

    async def read(self) -> None:
        assert self.session is not None
        while True:
            msg = await self.session.next_message(lambda: _receive(self.ws), self.inactivity_s,
                                                  lambda: self.ending)
            context_id = msg.get("context_id")
            try:
                await self.dispatch(msg, context_id)
            except ServiceError as exc:
                if context_id is None:
                    raise
                await self.sink.context_error(str(context_id), exc)  # that context only: the socket stays

    async def dispatch(self, msg: dict[str, Any], context_id: str | None) -> None:
        session = self.session
        assert session is not None
        kind = msg["type"]
        if context_id is not None and (not isinstance(context_id, str) or not 1 <= len(context_id) <= 64):
            raise InvalidInput("validation_error", "context_id: a string of 1 to 64 characters")
        if kind == "start":
            _, settings = _start(msg)
            await session.open_context(context_id, settings)
        elif kind == "text":
            text = msg.get("text")
            if not isinstance(text, str):
                raise InvalidInput("validation_error", "text: a string is required")
            session.get(context_id).add_text(text)
        elif kind == "mark":
            name = msg.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidInput("validation_error", "name: a mark name is required")
            session.get(context_id).add_mark(name)
        elif kind == "flush":
            session.get(context_id).flush()
        elif kind == "clear":
            await session.clear(context_id)
        elif kind in ("end", "close"):
            if context_id is not None:
                session.end(context_id)
            else:
                self.ending = True
                for cid in list(session.contexts):
                    session.end(cid)
                session.closing_requested()
        else:
            raise ApiError(400, "invalid_message", f"unknown message type '{kind}'")


@router.websocket("/v1/synthesize/ws")
async def synthesize_ws(ws: WebSocket) -> None:
    services: AppState = ws.app.state.services
    request_id = str(getattr(ws.state, "request_id", "") or "")
    await ws.accept()
    sink = WsSink(ws)
    conn = Connection(ws, services, sink)
    slot: contextlib.AsyncExitStack | None = None
    reader: asyncio.Task[None] | None = None
    gone = False
    try:
        auth = ws.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ws.query_params.get("api_key", "")
        tenant = await authenticate_key(services, key, ws)
        slot = await services.flow.stream_slot(tenant)
        await conn.open(tenant, request_id)
        assert conn.session is not None
        reader = asyncio.create_task(conn.read())
        await read_until_closed(reader, conn.session)
        if sink.fatal is not None:
            raise sink.fatal
        await ws.close(1000)
    except ServiceError as exc:
        if exc.code != "inactivity_timeout":
            services.flow.observe_error(exc)
        await sink.error(None, exc)
        await close_after(ws, exc)
    except (ClientGone, WebSocketDisconnect):
        gone = True
    finally:
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if conn.session is not None:
            await conn.session.abort()  # contexts still open: cancelled, recorded as 499
        if slot is not None:
            await slot.aclose()
        if gone:
            log.debug("websocket client left")
