"""ElevenLabs-compatible WebSockets over the realtime core (protocol details in elevenlabs_ws_protocol.py).

- `WS /v1/text-to-speech/{voice_id}/stream-input`: one utterance per socket. Text chunks are buffered,
  complete sentences are spoken at once, `flush: true` speaks what is buffered, `{"text": ""}` (or
  `close_socket`) ends the input: the rest is spoken, `isFinal` is sent and the socket closes.
- `WS /v1/text-to-speech/{voice_id}/multi-stream-input`: several contexts (`context_id`) on one socket.
  The first message naming a context opens it (its `voice_settings` apply to it); `{"text": ""}` without
  flush is a keepalive; `close_socket` ends every context and closes once their audio is out.
- `close_context` follows what the clients do with it. Pipecat and LiveKit end a turn with a flush
  (`{"flush": true}` / `{"text": "", "flush": true}`) and then `close_context`, and expect the turn's
  audio; on interruption they send `close_context` with no flush before it (or a second one). So:
  a close_context that comes right after a flush with no new text ends the context gracefully (the
  flushed audio is sent, then `isFinal`); any other close_context (text sent since the last flush, or
  the context already closing) is barge-in: `RealtimeSession.clear` cancels its synthesis at once (the
  engine requests with it), nothing more of it is sent, `isFinal` acknowledges and the context is gone.
- Replies: `{"audio": base64, "alignment": {...}, "normalizedAlignment": {...}, "isFinal": null}` per
  chunk of the output format (`output_format` query, default mp3_44100_128), alignment-only messages
  when a flush or the end times the last characters, `{"isFinal": true}`; `contextId` on every
  message of the multi-context socket. Errors: `{"error": code, "message", "code": status}`; one of a
  named context leaves the socket open, any other closes it.
- Auth: `xi-api-key` (or Bearer) on the upgrade request, or `xi_api_key` in the first message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, WebSocket, WebSocketDisconnect

from control_plane.api.deps import api_key_of, authenticate_key
from control_plane.api.elevenlabs_protocol import CharacterAligner, parse_output_format
from control_plane.api.elevenlabs_ws_protocol import (
    ClientMessage,
    StreamQuery,
    alignment_frame,
    parse_message,
    parse_query,
)
from control_plane.api.ws import ClientGone, close_after, read_until_closed, receive_json
from control_plane.errors import InvalidInput, ServiceError
from control_plane.services.flow import Caller, Outcome
from control_plane.services.realtime import Context, ContextSettings, RealtimeSession
from control_plane.services.rendering import WordTiming
from control_plane.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(tags=["elevenlabs"])

VoiceId = Annotated[str, Path(min_length=1, max_length=64)]
Chars = tuple[list[str], list[float], list[float]]


@dataclass
class _State:
    """What the adapter keeps of one context: its text for the alignment, and how it is being closed."""

    aligner: CharacterAligner = field(default_factory=lambda: CharacterAligner(""))
    words: list[WordTiming] = field(default_factory=list)
    origin_s: float = 0.0  # where the next message's alignment times start
    flush_ends: deque[int] = field(default_factory=deque)  # input offsets of the flushes not yet spoken
    flushed_last: bool = False  # the last message was a flush with no text: close_context waits for it
    closing: bool = False


def _join(*parts: Chars) -> Chars:
    return ([c for p in parts for c in p[0]], [s for p in parts for s in p[1]], [e for p in parts for e in p[2]])


class ElevenLabsSink:
    """ElevenLabs' framing of a realtime session's events; one send at a time."""

    def __init__(self, ws: WebSocket, multi: bool) -> None:
        self.ws, self.multi = ws, multi
        self.lock = asyncio.Lock()
        self.states: dict[int, _State] = {}
        self.fatal: ServiceError | None = None

    def state(self, ctx: Context) -> _State:
        return self.states.setdefault(id(ctx), _State())

    async def _send(self, ctx: Context | None, message: dict[str, Any]) -> None:
        if self.multi and ctx is not None and ctx.context_id is not None:
            message["contextId"] = ctx.context_id
        async with self.lock:
            await self.ws.send_json(message)

    async def _alignment(self, ctx: Context, st: _State, chars: Chars, audio: bytes | None) -> None:
        message: dict[str, Any] = {"audio": base64.b64encode(audio).decode("ascii") if audio else None,
                                   "isFinal": None}
        if chars[0]:
            frame = alignment_frame(*chars, origin_s=st.origin_s)
            message["alignment"] = message["normalizedAlignment"] = frame
            st.origin_s = max(st.origin_s, chars[2][-1])
        if audio or chars[0]:
            await self._send(ctx, message)

    async def started(self, ctx: Context) -> None:
        pass  # ElevenLabs has no such message: the output format was chosen in the URL

    async def audio(self, ctx: Context, data: bytes) -> None:
        if ctx.cancelled:
            return
        st = self.state(ctx)
        chars = st.aligner.words(st.words)
        st.words = []
        await self._alignment(ctx, st, chars, data)

    async def mark(self, ctx: Context, name: str, time_s: float) -> None:
        pass  # no marks in this protocol

    async def words(self, ctx: Context, words: list[WordTiming]) -> None:
        if not ctx.cancelled:
            self.state(ctx).words.extend(words)

    async def flushed(self, ctx: Context) -> None:
        st = self.state(ctx)
        end = st.flush_ends.popleft() if st.flush_ends else ctx.consumed
        chars = _join(st.aligner.words(st.words), st.aligner.upto(end, ctx.audio_seconds))
        st.words = []
        await self._alignment(ctx, st, chars, None)

    async def cleared(self, ctx: Context) -> None:
        self.states.pop(id(ctx), None)
        await self._send(ctx, {"isFinal": True})  # the acknowledgement: nothing of it follows

    async def done(self, ctx: Context, outcome: Outcome) -> None:
        st = self.states.pop(id(ctx), _State())
        chars = _join(st.aligner.words(st.words), st.aligner.finish(outcome.audio_seconds))
        await self._alignment(ctx, st, chars, None)
        await self._send(ctx, {"isFinal": True})

    async def error(self, ctx: Context | None, exc: ServiceError) -> None:
        with contextlib.suppress(Exception):
            await self._send(ctx, {"error": exc.code, "message": exc.message, "code": exc.status_code})
        if ctx is not None:
            self.states.pop(id(ctx), None)
        if ctx is None or ctx.context_id is None:
            self.fatal = exc


async def _receive(ws: WebSocket) -> ClientMessage:
    return parse_message(await receive_json(ws, InvalidInput("invalid_message", "messages must be JSON objects")))


class Connection:
    """Reads the socket without pause and turns each message into a realtime-session call at once."""

    def __init__(self, ws: WebSocket, services: AppState, sink: ElevenLabsSink, voice_id: str,
                 query: StreamQuery) -> None:
        self.ws, self.services, self.sink, self.voice_id, self.query = ws, services, sink, voice_id, query
        self.multi = sink.multi
        self.output = parse_output_format(query.output_format)
        self.inactivity_s = query.inactivity_timeout or float(services.settings.ws_inactivity_timeout_s)
        self.session: RealtimeSession | None = None
        self.ending = False

    def context_settings(self, msg: ClientMessage) -> ContextSettings:
        return ContextSettings(voice_id=self.voice_id, language=self.query.language_code or "en",
                               format=self.output.fmt, sample_rate=self.output.rate, speed=msg.speed or 1.0,
                               normalize=self.query.apply_text_normalization)

    async def open(self, tenant: Any, request_id: str, first: ClientMessage) -> None:
        endpoint = "elevenlabs_ws_multi" if self.multi else "elevenlabs_ws"
        self.session = RealtimeSession(self.services.flow, Caller(tenant=tenant, endpoint=endpoint,
                                                                  request_id=request_id),
                                       self.sink, max_contexts=self.services.settings.ws_max_contexts)
        await self.handle(first)

    async def read(self) -> None:
        assert self.session is not None
        while True:
            msg = await self.session.next_message(lambda: _receive(self.ws), self.inactivity_s,
                                                  lambda: self.ending)
            await self.handle(msg)

    async def handle(self, msg: ClientMessage) -> None:
        try:
            await self.dispatch(msg)
        except ServiceError as exc:
            if not self.multi or msg.context_id is None:
                raise
            with contextlib.suppress(Exception):  # that context only: the socket stays open
                async with self.sink.lock:
                    await self.ws.send_json({"error": exc.code, "message": exc.message,
                                             "code": exc.status_code, "contextId": msg.context_id})

    def close_socket(self) -> None:
        session = self.session
        assert session is not None
        self.ending = True
        for cid in list(session.contexts):
            self.sink.state(session.contexts[cid]).closing = True
            session.end(cid)
        session.closing_requested()

    async def dispatch(self, msg: ClientMessage) -> None:
        session = self.session
        assert session is not None
        if msg.close_socket or (not self.multi and msg.text == "" and not msg.flush):
            self.close_socket()  # single context: empty text is the end of the input
            return
        cid = msg.context_id if self.multi else None
        ctx = session.contexts.get(cid)
        if ctx is None:
            if msg.close_context or self.ending or not msg.text and not msg.flush:
                return  # a keepalive, or a context already finished: nothing to do
            ctx = await session.open_context(cid, self.context_settings(msg))
            if msg.text is not None and not msg.text.strip() and not msg.flush:
                return  # the initial message: " " opens the context
        st = self.sink.state(ctx)
        if msg.close_context:
            if st.flushed_last and not st.closing:
                st.closing = True
                session.end(cid)  # the turn's last flush: its audio is spoken, then isFinal
            else:
                await session.clear(cid, reopen=False)  # barge-in
            return
        if st.closing:
            raise InvalidInput("context_closed", "this context is closing: open a new one for more text")
        if msg.text:
            ctx.add_text(msg.text)
            st.aligner.text += msg.text
            st.flushed_last = False
        if msg.flush:
            ctx.flush()
            st.flush_ends.append(ctx.consumed)
            st.flushed_last = not msg.text


async def _serve(ws: WebSocket, voice_id: str, multi: bool) -> None:
    services: AppState = ws.app.state.services
    request_id = str(getattr(ws.state, "request_id", "") or "")
    await ws.accept()
    sink = ElevenLabsSink(ws, multi)
    conn: Connection | None = None
    slot: contextlib.AsyncExitStack | None = None
    reader: asyncio.Task[None] | None = None
    try:
        query = parse_query(dict(ws.query_params))
        key = api_key_of(ws)
        first: ClientMessage | None = None
        if not key:  # the key may come in the first message instead of a header
            first = await asyncio.wait_for(_receive(ws), float(services.settings.ws_inactivity_timeout_s))
            key = (first.xi_api_key or "").strip()
        tenant = await authenticate_key(services, key, ws)
        conn = Connection(ws, services, sink, voice_id, query)
        slot = await services.flow.stream_slot(tenant)
        if first is None:
            first = await asyncio.wait_for(_receive(ws), conn.inactivity_s)
        await conn.open(tenant, request_id, first)
        assert conn.session is not None
        reader = asyncio.create_task(conn.read())
        await read_until_closed(reader, conn.session)
        if sink.fatal is not None:
            raise sink.fatal
        await ws.close(1000)
    except TimeoutError:
        with contextlib.suppress(Exception):
            await ws.close(1008, "no message before the inactivity timeout")
    except ServiceError as exc:
        if exc.code != "inactivity_timeout":
            services.flow.observe_error(exc)
        await sink.error(None, exc)
        await close_after(ws, exc)
    except (ClientGone, WebSocketDisconnect):
        log.debug("websocket client left")
    finally:
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if conn is not None and conn.session is not None:
            await conn.session.abort()  # contexts still open: cancelled, recorded as 499
        if slot is not None:
            await slot.aclose()


@router.websocket("/v1/text-to-speech/{voice_id}/stream-input")
async def stream_input(ws: WebSocket, voice_id: VoiceId) -> None:
    await _serve(ws, voice_id, multi=False)


@router.websocket("/v1/text-to-speech/{voice_id}/multi-stream-input")
async def multi_stream_input(ws: WebSocket, voice_id: VoiceId) -> None:
    await _serve(ws, voice_id, multi=True)
