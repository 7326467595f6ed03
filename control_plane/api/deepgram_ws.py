"""WS /v1/speak: Deepgram Aura's streaming text-to-speech socket over the realtime core.

- The upgrade request carries what the HTTP form's query does (`model`, `encoding` linear16|mulaw|alaw,
  `sample_rate`, `speed`) and the key (`Authorization: Token <key>` or Bearer, or the subprotocol offer
  `token, <key>`, answered with `token`). A request that cannot be served is refused before the upgrade
  with Deepgram's error body and the reason in `dg-error` (401 bad key, 400 bad option, 429/503 limits).
- Once open: `{"type": "Metadata", "request_id", "model_name", "model_version", "model_uuid"}`.
- `{"type": "Speak", "text"}`: text as it is written; complete sentences are spoken at once, the rest
  waits for `{"type": "Flush"}`, which speaks it and is answered by `{"type": "Flushed", "sequence_id"}`
  once its audio is out. Audio is one continuous stream of binary frames in the asked encoding.
- `{"type": "Clear"}`: barge-in. The utterance's synthesis is cancelled at once (its engine requests with
  it), its text dropped, `{"type": "Cleared", "sequence_id"}` answers and nothing of it follows.
- `{"type": "Close"}`: what was flushed is spoken, then the socket closes (1000).
- An unknown message type gets `{"type": "Warning", "description", "code"}` (also as warn_code/warn_msg)
  and the socket stays open; a message that is not a JSON object, or a Speak without text or over 2000
  characters, gets `{"type": "Error", "err_code", "err_msg", "description"}` and the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from control_plane.api import deepgram_protocol as dg
from control_plane.api.deps import authenticate_key
from control_plane.api.raw_audio import RawConverter
from control_plane.api.ws import ClientGone, close_after, read_until_closed
from control_plane.errors import InvalidInput, ServiceError, ws_close_code
from control_plane.services.flow import Caller, Outcome
from control_plane.services.realtime import Context, ContextSettings, RealtimeSession
from control_plane.services.rendering import WordTiming
from control_plane.services.tenants import TenantContext
from control_plane.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(tags=["deepgram"])

MESSAGE_TYPES = ("Speak", "Flush", "Clear", "Close")


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(max_length=32)
    text: str | None = Field(None, max_length=dg.MAX_TEXT)


class DeepgramSink:
    """Deepgram's framing of the realtime session's events; one send at a time."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.converter: RawConverter | None = None  # G.711 at 16 kHz: encoded from the context's s16le
        self.lock = asyncio.Lock()
        self.flushes = 0  # Flush messages taken: the sequence id of the next one
        self.pending: deque[int] = deque()  # sequence ids of the flushes whose audio is not yet out
        self.fatal: ServiceError | None = None

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_json(message)

    async def warning(self, code: str, message: str) -> None:
        await self.send({"type": "Warning", "description": message, "code": code, "warn_code": code,
                         "warn_msg": message})

    async def started(self, ctx: Context) -> None:
        pass  # the format was fixed by the upgrade request; Metadata was sent on open

    async def audio(self, ctx: Context, data: bytes) -> None:
        if ctx.cancelled:
            return
        async with self.lock:
            if not ctx.cancelled:  # a Clear may have come while this waited for the socket
                if self.converter is not None:
                    data = self.converter.convert(data)
                await self.ws.send_bytes(data)

    async def mark(self, ctx: Context, name: str, time_s: float) -> None:
        pass  # no marks in this protocol

    async def words(self, ctx: Context, words: list[WordTiming]) -> None:
        pass  # Aura sends no word timings

    async def flushed(self, ctx: Context) -> None:
        if not ctx.cancelled:
            await self.send({"type": "Flushed", "sequence_id": self.pending.popleft() if self.pending else 0})

    async def cleared(self, ctx: Context) -> None:
        self.pending.clear()  # those flushes were cleared with their text: no Flushed for them
        await self.send({"type": "Cleared", "sequence_id": self.flushes})

    async def done(self, ctx: Context, outcome: Outcome) -> None:
        pass  # Close ends the socket once the audio is out; Aura has no end-of-utterance message

    async def error(self, ctx: Context | None, exc: ServiceError) -> None:
        with contextlib.suppress(Exception):
            await self.send({"type": "Error", "err_code": dg.dg_code(exc), "err_msg": exc.message,
                             "description": exc.message, "code": exc.code,
                             "request_id": ctx.request_id if ctx else None})
        self.fatal = exc


class Connection:
    """Reads the socket without pause and turns each message into a realtime-session call at once."""

    def __init__(self, ws: WebSocket, session: RealtimeSession, sink: DeepgramSink, inactivity_s: float) -> None:
        self.ws, self.session, self.sink, self.inactivity_s = ws, session, sink, inactivity_s
        self.ending = False

    async def _receive(self) -> ClientMessage:
        try:
            message = await self.ws.receive()
        except RuntimeError:
            raise ClientGone() from None
        if message["type"] == "websocket.disconnect":
            raise ClientGone()
        if message.get("text") is None:
            raise InvalidInput("INVALID_MESSAGE", "messages must be JSON objects in text frames")
        try:
            raw = json.loads(message["text"])
        except json.JSONDecodeError:
            raise InvalidInput("INVALID_MESSAGE", "messages must be JSON objects") from None
        if not isinstance(raw, dict):
            raise InvalidInput("INVALID_MESSAGE", "messages must be JSON objects")
        try:
            return ClientMessage.model_validate(raw)
        except ValidationError as exc:
            raise dg.text_error(exc) from None

    async def read(self) -> None:
        while True:
            msg = await self.session.next_message(self._receive, self.inactivity_s, lambda: self.ending)
            await self.dispatch(msg)

    async def dispatch(self, msg: ClientMessage) -> None:
        if msg.type not in MESSAGE_TYPES:
            await self.sink.warning("UNKNOWN_MESSAGE_TYPE", f"message type {msg.type!r} is not one of "
                                                            f"{', '.join(MESSAGE_TYPES)}; it was ignored")
            return
        if self.ending:
            await self.sink.warning("CLOSING", f"{msg.type} after Close was ignored")
            return
        ctx = self.session.get(None)
        if msg.type == "Speak":
            if msg.text is None:
                raise InvalidInput("INVALID_MESSAGE", "Speak needs a text")
            ctx.add_text(msg.text)
        elif msg.type == "Flush":
            self.sink.pending.append(self.sink.flushes)
            self.sink.flushes += 1
            ctx.flush()
        elif msg.type == "Clear":
            await self.session.clear(None)  # the utterance stays open for the next text
        else:  # Close
            self.ending = True
            self.session.end(None)
            self.session.closing_requested()


async def _refuse(ws: WebSocket, exc: ServiceError) -> None:
    """Deny the upgrade with Deepgram's error body (and dg-error), or close if the server cannot."""
    try:
        await ws.send_denial_response(dg.error_response(ws, exc))
    except RuntimeError:  # the server lacks the denial-response extension
        await ws.accept()
        await ws.close(ws_close_code(exc), exc.message[:120])


async def _open(ws: WebSocket, services: AppState,
                sink: DeepgramSink) -> tuple[TenantContext, dg.SpeakQuery, ContextSettings]:
    q = dg.parse_query(ws)
    out = dg.output_for(q, websocket=True)
    sink.converter = RawConverter(out.raw) if out.raw else None
    tenant = await authenticate_key(services, dg.api_key(ws), ws)
    voice_id, language = dg.voice_for(q.model, tenant.voice_map, q.language)
    return tenant, q, ContextSettings(voice_id=voice_id, language=language, format=out.fmt,
                                      sample_rate=out.rate, speed=q.our_speed)


@router.websocket("/v1/speak")
async def speak_socket(ws: WebSocket) -> None:
    services: AppState = ws.app.state.services
    request_id = str(getattr(ws.state, "request_id", "") or "")
    slot: contextlib.AsyncExitStack | None = None
    session: RealtimeSession | None = None
    reader: asyncio.Task[None] | None = None
    sink = DeepgramSink(ws)
    try:
        try:
            tenant, q, settings = await _open(ws, services, sink)
            slot = await services.flow.stream_slot(tenant)
            session = RealtimeSession(services.flow, Caller(tenant=tenant, endpoint="deepgram_ws",
                                                            request_id=request_id), sink, max_contexts=1)
            ctx = await session.open_context(None, settings)
        except ServiceError as exc:
            await _refuse(ws, exc)  # counted in the error metrics by the refusal
            return
        await ws.accept(subprotocol="token" if dg.offers_token_protocol(ws) else None,
                        headers=[(k.encode(), v.encode()) for k, v in
                                 dg.speak_headers(request_id, q.model, 0).items() if k != "dg-char-count"])
        await sink.send({"type": "Metadata", "request_id": request_id, "model_name": q.model,
                         "model_version": ctx.voice.engine, "model_uuid": dg.model_uuid(q.model)})
        conn = Connection(ws, session, sink, float(services.settings.ws_inactivity_timeout_s))
        reader = asyncio.create_task(conn.read())
        await read_until_closed(reader, session)
        if sink.fatal is not None:
            raise sink.fatal
        await ws.close(1000)
    except ServiceError as exc:
        if exc.code != "inactivity_timeout":
            services.flow.observe_error(exc)
        if sink.fatal is not exc:
            await sink.error(None, exc)
        await close_after(ws, exc)
    except (ClientGone, WebSocketDisconnect):
        log.debug("websocket client left")
    finally:
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if session is not None:
            await session.abort()  # an utterance still open: cancelled, recorded as 499
        if slot is not None:
            await slot.aclose()

