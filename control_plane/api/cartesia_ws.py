"""Cartesia-compatible WebSocket `WS /tts/websocket` over the realtime core (protocol in cartesia_protocol.py).

- Every generation message names a `context_id`; the first one for a context opens it with its voice,
  output format (raw only), language, speed and `add_timestamps`. A context is one utterance: its text
  pieces are one audio stream and one request to limits, usage and billing.
- `continue: true` means more text follows: complete sentences are spoken at once, the rest waits for
  more text, a `flush`, or `max_buffer_delay_ms` (default 3000) without new text; `max_buffer_delay_ms: 0`
  speaks each message as it comes (LiveKit and Pipecat send whole sentences that way). `continue: false`
  (or absent) ends the input: the rest is spoken, then `done`.
- `flush: true` speaks what is buffered and answers `flush_done` with its `flush_id` once that audio is out.
- `{"context_id", "cancel": true}` is barge-in: the context's synthesis is cancelled at once and nothing
  more of it is sent (no `done` follows).
- Out: `chunk` (base64 audio in the asked encoding and rate), `timestamps` (`word_timestamps` in seconds
  from the start of the context's audio), `flush_done`, `done`, and `error` (with `context_id`; the
  socket stays open, only that context ends).
- Auth: `X-API-Key` or Bearer on the upgrade request, or the `api_key` query.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from control_plane.api.cartesia import timestamps_event
from control_plane.api.cartesia_protocol import (
    CancelMessage,
    TTSBody,
    cartesia_key,
    check_version,
    error_event,
    parse_message,
    voice_for,
)
from control_plane.api.deps import authenticate_key
from control_plane.api.raw_audio import RawConverter
from control_plane.api.ws import ClientGone, close_after, receive_json
from control_plane.errors import InvalidInput, ServiceError
from control_plane.services.flow import Caller, Outcome
from control_plane.services.realtime import Context, ContextSettings, RealtimeSession
from control_plane.services.rendering import WordTiming
from control_plane.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(tags=["cartesia"])

DEFAULT_BUFFER_DELAY_MS = 3000


@dataclass
class _State:
    """What the adapter keeps of one context: its output encoding, whether it wants timestamps, its flushes."""

    converter: RawConverter
    timestamps: bool
    buffer_delay_ms: int | None
    flushes: deque[int | None] = field(default_factory=deque)  # per flush queued: the client's flush id or None
    flush_count: int = 0
    ending: bool = False
    timer: asyncio.Task[None] | None = None

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class CartesiaSink:
    """Cartesia's framing of a realtime session's events; one send at a time."""

    def __init__(self, ws: WebSocket, request_id: str) -> None:
        self.ws, self.request_id = ws, request_id
        self.lock = asyncio.Lock()
        self.states: dict[int, _State] = {}

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_json(message)

    async def started(self, ctx: Context) -> None:
        pass  # the output format was fixed by the context's first message

    async def audio(self, ctx: Context, data: bytes) -> None:
        st = self.states.get(id(ctx))
        if ctx.cancelled or st is None:
            return
        await self.send({"type": "chunk", "data": base64.b64encode(st.converter.convert(data)).decode("ascii"),
                         "done": False, "status_code": 206, "step_time": 0.0, "context_id": ctx.context_id,
                         "flush_id": st.flush_count + 1})

    async def mark(self, ctx: Context, name: str, time_s: float) -> None:
        pass  # no marks in this protocol

    async def words(self, ctx: Context, words: list[WordTiming]) -> None:
        st = self.states.get(id(ctx))
        if not ctx.cancelled and st is not None and st.timestamps and words:
            await self.send(timestamps_event(words, ctx.context_id))

    async def flushed(self, ctx: Context) -> None:
        st = self.states.get(id(ctx))
        flush_id = st.flushes.popleft() if st is not None and st.flushes else None
        if flush_id is not None and not ctx.cancelled:
            await self.send({"type": "flush_done", "done": False, "flush_done": True, "flush_id": flush_id,
                             "status_code": 206, "context_id": ctx.context_id})

    async def cleared(self, ctx: Context) -> None:
        st = self.states.pop(id(ctx), None)
        if st is not None:
            st.stop_timer()  # cancelled: nothing of it is sent any more, not even `done`

    async def done(self, ctx: Context, outcome: Outcome) -> None:
        st = self.states.pop(id(ctx), None)
        if st is not None:
            st.stop_timer()
        await self.send({"type": "done", "done": True, "status_code": 200, "context_id": ctx.context_id})

    async def error(self, ctx: Context | None, exc: ServiceError) -> None:
        if ctx is not None:
            st = self.states.pop(id(ctx), None)
            if st is not None:
                st.stop_timer()
        with contextlib.suppress(Exception):
            await self.send(error_event(exc, ctx.context_id if ctx else None, self.request_id))


async def _receive(ws: WebSocket) -> TTSBody | CancelMessage:
    return parse_message(await receive_json(ws, InvalidInput("invalid_message", "messages must be JSON objects")))


class Connection:
    """Reads the socket without pause and turns each message into a realtime-session call at once."""

    def __init__(self, ws: WebSocket, services: AppState, tenant: Any, session: RealtimeSession,
                 sink: CartesiaSink) -> None:
        self.ws, self.services, self.tenant, self.session, self.sink = ws, services, tenant, session, sink
        self.inactivity_s = float(services.settings.ws_inactivity_timeout_s)

    async def read(self) -> None:
        while True:
            try:
                msg = await self.session.next_message(lambda: _receive(self.ws), self.inactivity_s, lambda: False)
            except InvalidInput as exc:
                if exc.code == "inactivity_timeout":
                    raise
                await self.sink.error(None, exc)  # a message that could not be read: the socket stays open
                continue
            try:
                await self.dispatch(msg)
            except ServiceError as exc:  # that context only: the socket stays open
                with contextlib.suppress(Exception):
                    await self.sink.send(error_event(exc, msg.context_id, self.sink.request_id))

    async def open(self, cid: str, body: TTSBody) -> Context:
        of = body.output_format.checked(streaming=True)
        voice_id = await voice_for(self.services.voices, self.tenant, body.voice_id)
        settings = ContextSettings(voice_id=voice_id, language=body.our_language, format="pcm",
                                   sample_rate=of.sample_rate, speed=body.our_speed, volume=body.our_volume,
                                   normalize=body.our_normalize)
        converter = RawConverter(of.raw_encoding)
        ctx = await self.session.open_context(cid, settings)
        self.sink.states[id(ctx)] = _State(converter, body.add_timestamps, body.max_buffer_delay_ms)
        return ctx

    async def dispatch(self, msg: TTSBody | CancelMessage) -> None:
        session = self.session
        cid = msg.context_id
        assert cid is not None
        if isinstance(msg, CancelMessage):
            if cid in session.contexts:
                await session.clear(cid, reopen=False)  # barge-in
            return
        ctx = session.contexts.get(cid)
        if ctx is None:
            ctx = await self.open(cid, msg)
        st = self.sink.states.get(id(ctx))
        if st is None or st.ending:
            raise InvalidInput("context_closed", f"context '{cid}' has ended its input; use a new context_id")
        st.stop_timer()
        if msg.text:
            ctx.add_text(msg.text)
        if msg.flush:
            st.flush_count += 1
            ctx.flush()
            st.flushes.append(st.flush_count)
        if not msg.continue_:
            st.ending = True
            session.end(cid)  # the rest is spoken, then `done`
        elif ctx.buffer.strip():
            delay = msg.max_buffer_delay_ms if msg.max_buffer_delay_ms is not None else st.buffer_delay_ms
            if delay == 0:
                ctx.flush()  # the client buffers: each message is spoken as it comes
                st.flushes.append(None)
            else:
                st.timer = asyncio.create_task(self._flush_later(ctx, st, (delay or DEFAULT_BUFFER_DELAY_MS) / 1000))

    async def _flush_later(self, ctx: Context, st: _State, delay_s: float) -> None:
        """The buffer delay passed with no new text: speak what is buffered."""
        await asyncio.sleep(delay_s)
        st.timer = None
        if not st.ending and not ctx.cancelled and ctx.buffer.strip():
            ctx.flush()
            st.flushes.append(None)


@router.websocket("/tts/websocket")
async def tts_websocket(ws: WebSocket) -> None:
    services: AppState = ws.app.state.services
    request_id = str(getattr(ws.state, "request_id", "") or "")
    await ws.accept()
    sink = CartesiaSink(ws, request_id)
    session: RealtimeSession | None = None
    slot: contextlib.AsyncExitStack | None = None
    try:
        check_version(ws)
        tenant = await authenticate_key(services, cartesia_key(ws), ws)
        slot = await services.flow.stream_slot(tenant)
        session = RealtimeSession(services.flow, Caller(tenant=tenant, endpoint="cartesia_ws", request_id=request_id),
                                  sink, max_contexts=services.settings.ws_max_contexts)
        await Connection(ws, services, tenant, session, sink).read()
    except ServiceError as exc:
        if exc.code != "inactivity_timeout":
            services.flow.observe_error(exc)
            await sink.error(None, exc)
        await close_after(ws, exc)
    except (ClientGone, WebSocketDisconnect):
        log.debug("websocket client left")
    finally:
        if session is not None:
            for st in sink.states.values():
                st.stop_timer()
            await session.abort()  # contexts still open: cancelled, recorded as 499
        if slot is not None:
            await slot.aclose()
