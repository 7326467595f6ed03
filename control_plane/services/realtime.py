"""Realtime speech for voice agents: one socket, several contexts, text in as it is written, barge-in.

A `RealtimeSession` belongs to one connection. Each context has its own voice and settings, its own
text buffer and one worker task that speaks its pieces in order: a piece is a complete sentence of
the buffer (or what is left at `flush`/`end`), synthesised through the shared flow with the
context's voice resolved once. The connection's reader never waits for audio: `clear` cancels the
context's worker at once (its engine requests are cancelled as the worker unwinds), drops the
buffered text and answers `cleared`; nothing of that context is sent after it.

A context is one request to usage and billing: it is recorded when it ends (done, cleared, or the
socket closing) with the characters of the pieces it started and the audio it sent. The protocol
framing lives in the adapter (api/ws.py, or another protocol's), behind `RealtimeSink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

import numpy as np

from control_plane.errors import InvalidInput, LimitExceeded, ServiceError
from control_plane.services import audio as A
from control_plane.services.admission import Overloaded
from control_plane.services.flow import Caller, Outcome, SynthesisFlow
from control_plane.services.rendering import WordsEvent, WordTiming, off_loop
from control_plane.services.synthesis import SynthesisRequest
from control_plane.services.voices import ResolvedVoice
from tts_contract import MAX_TEXT_CHARS, complete_sentence

log = logging.getLogger(__name__)
M = TypeVar("M")

MAX_BUFFER_CHARS = MAX_TEXT_CHARS


@dataclass
class ContextSettings:
    voice_id: str = "en-US-generic"
    language: str = "en"
    format: str = "pcm"
    sample_rate: int | None = None
    speed: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    seed: int | None = None
    normalize: str | None = None
    lexicons: list[str] | None = None


class RealtimeSink(Protocol):
    """What a protocol adapter does with a session's events (framing is the adapter's business)."""

    async def started(self, ctx: Context) -> None: ...

    async def audio(self, ctx: Context, data: bytes) -> None: ...

    async def mark(self, ctx: Context, name: str, time_s: float) -> None: ...

    async def words(self, ctx: Context, words: list[WordTiming]) -> None: ...

    async def flushed(self, ctx: Context) -> None: ...

    async def cleared(self, ctx: Context) -> None: ...

    async def done(self, ctx: Context, outcome: Outcome) -> None: ...

    async def error(self, ctx: Context | None, exc: ServiceError) -> None: ...


@dataclass
class _Say:
    text: str
    offset: int  # where the piece starts in the context's input (characters)
    marks: list[tuple[str, int]] = field(default_factory=list)  # (name, offset within the piece)
    ack_flush: bool = False
    end: bool = False


class Context:
    """One utterance stream on a socket: settings, buffered text, the audio sent so far."""

    def __init__(self, session: RealtimeSession, context_id: str | None, settings: ContextSettings,
                 voice: ResolvedVoice) -> None:
        self.session = session
        self.context_id = context_id
        self.settings = settings
        self.voice = voice
        self.request_id = session.request_id if context_id is None else f"{session.request_id}:{context_id}"
        self.buffer = ""
        self.consumed = 0  # characters of the input taken out of the buffer into pieces
        self.pending_marks: list[tuple[str, int]] = []  # (name, absolute input offset)
        self.rate: int | None = None
        self.fmt = settings.format
        self.encoder: A.StreamEncoder | None = None
        self.samples = 0
        self.characters = 0
        self.engine: str | None = None
        self.queue: asyncio.Queue[_Say] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.ended = False
        self.cancelled = False  # cleared or aborted: nothing more of it is sent
        self.recorded = False
        self.pieces = 0  # pieces spoken: only the first is cut short (its audio starts the context)

    @property
    def audio_seconds(self) -> float:
        return self.samples / self.rate if self.rate else 0.0

    @property
    def busy(self) -> bool:
        return self.worker is not None and not self.worker.done() and (not self.queue.empty() or self._speaking)

    _speaking = False

    # --- text in ---
    def add_text(self, text: str) -> None:
        if len(self.buffer) + len(text) > MAX_BUFFER_CHARS:
            raise InvalidInput("text_too_long", f"more than {MAX_BUFFER_CHARS} characters buffered without a "
                               "sentence end; this text was not taken")
        self.buffer += text
        while found := complete_sentence(self.buffer):  # "3." at the end may become "3.5": it waits
            self._take(found[1])

    def add_mark(self, name: str) -> None:
        self.pending_marks.append((name, self.consumed + len(self.buffer)))

    def flush(self, *, end: bool = False) -> None:
        self._take(len(self.buffer), ack_flush=not end, end=end)

    def _take(self, n: int, *, ack_flush: bool = False, end: bool = False) -> None:
        piece, self.buffer = self.buffer[:n], self.buffer[n:]
        start, stop = self.consumed, self.consumed + n
        marks = [(name, off - start) for name, off in self.pending_marks if off <= stop]
        self.pending_marks = [(name, off) for name, off in self.pending_marks if off > stop]
        self.consumed = stop
        self.queue.put_nowait(_Say(piece, start, marks, ack_flush, end))

    def clear(self) -> None:
        """Forget the buffered text and whatever is queued (the worker is cancelled by the session)."""
        self.buffer = ""
        self.pending_marks = []
        self.consumed = 0
        while not self.queue.empty():
            self.queue.get_nowait()

    # --- audio out ---
    async def run(self) -> None:
        """Speak queued pieces in order until an `end` piece; errors end this context only."""
        sink = self.session.sink
        try:
            while True:
                say = await self.queue.get()
                self._speaking = True
                await self._speak(say)
                self._speaking = False
                if say.ack_flush:
                    await sink.flushed(self)
                if say.end:
                    break
            await self._finish_audio()
            await self.session.finished(self, 200)
        except ServiceError as exc:
            await sink.error(self, exc)
            if isinstance(exc, Overloaded) and not self.characters:
                self.recorded = True  # refused before any of it was spoken: it cost nothing, as over HTTP
            await self.session.finished(self, exc.status_code)

    async def _speak(self, say: _Say) -> None:
        sink = self.session.sink
        text = say.text.strip()
        begin = self.samples
        if text:
            lead = len(say.text) - len(say.text.lstrip())
            settings = self.settings
            req = SynthesisRequest(text=text, voice_id=settings.voice_id, language=settings.language,
                                   speed=settings.speed, pitch=settings.pitch, volume=settings.volume,
                                   format="pcm", sample_rate=self.rate or settings.sample_rate, seed=settings.seed,
                                   normalize=settings.normalize, lexicons=settings.lexicons,
                                   shorten_first_segment=None if self.pieces == 0 else False)
            self.pieces += 1
            # Admission is decided once per utterance: its later pieces are never refused half-way.
            speech = await self.session.flow.open(self.session.caller(self), req, streaming=False, record=False,
                                                  voice=self.voice, admit=self.rate is None)
            self.characters += speech.prepared.characters
            if self.rate is None:
                self.rate, self.engine = speech.prepared.rate, speech.prepared.engine
                self.encoder = A.StreamEncoder(self.fmt, self.rate)
                await sink.started(self)
            try:
                async for item in speech.pcm():
                    if isinstance(item, np.ndarray):
                        await self._send_pcm(item)
                    elif isinstance(item, WordsEvent):
                        await sink.words(self, [_shift(w, begin / self.rate, say.offset + lead) for w in item.words])
            finally:
                await speech.finish()
            length = self.samples - begin
            timings = speech.stats.words
            for name, off in say.marks:
                await sink.mark(self, name, _mark_time(off - lead, text, timings, begin, length, self.rate))
        else:
            for name, _ in say.marks:
                await sink.mark(self, name, round(self.samples / (self.rate or 1), 4))

    async def _send_pcm(self, x: np.ndarray) -> None:
        assert self.encoder is not None
        self.samples += x.size
        data = await off_loop(self.encoder.encode, x)
        if data:
            await self.session.sink.audio(self, data)

    async def _finish_audio(self) -> None:
        if self.encoder is not None:
            tail = self.encoder.finish()
            if tail:
                await self.session.sink.audio(self, tail)


def _shift(w: WordTiming, seconds: float, chars: int) -> WordTiming:
    return replace(w, start_s=round(w.start_s + seconds, 4), end_s=round(w.end_s + seconds, 4),
                   char_start=w.char_start + chars, char_end=w.char_end + chars)


def _mark_time(offset: int, text: str, timings: list[WordTiming], begin: int, length: int, rate: int) -> float:
    """A mark's time: the start of the first word at or after it when the engine timed the words,
    else its share of the piece's characters."""
    for w in timings:
        if w.char_start >= offset:
            return round(begin / rate + w.start_s, 4)
    frac = min(max(offset, 0) / max(len(text), 1), 1.0)
    return round((begin + frac * length) / rate, 4)


class RealtimeSession:
    """The contexts of one connection. Methods are called by the adapter's reader; they never wait for audio."""

    def __init__(self, flow: SynthesisFlow, caller: Caller, sink: RealtimeSink, *, max_contexts: int) -> None:
        self.flow = flow
        self.base = caller
        self.request_id = caller.request_id
        self.sink = sink
        self.max_contexts = max_contexts
        self.contexts: dict[str | None, Context] = {}
        self._close_requested = False
        self._closed = asyncio.Event()

    def caller(self, ctx: Context) -> Caller:
        return Caller(tenant=self.base.tenant, endpoint=self.base.endpoint, request_id=ctx.request_id)

    @property
    def busy(self) -> bool:
        return any(c.busy for c in self.contexts.values())

    def get(self, context_id: str | None) -> Context:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            name = "the default context" if context_id is None else f"context '{context_id}'"
            raise InvalidInput("unknown_context", f"{name} is not open: send a start message for it first")
        return ctx

    async def open_context(self, context_id: str | None, settings: ContextSettings) -> Context:
        """A new context (a request to rate limits), its voice resolved once; errors leave nothing open."""
        if context_id in self.contexts:
            raise InvalidInput("context_exists", f"context '{context_id}' is already open")
        if len(self.contexts) >= self.max_contexts:
            raise LimitExceeded("too_many_contexts", f"at most {self.max_contexts} open contexts per connection")
        tenant = self.base.tenant
        await self.flow.limiter.hit(tenant)
        voice = await self.flow.synthesis.voices.resolve(tenant.tenant_id, settings.voice_id)
        if settings.format not in A.FORMATS:
            raise InvalidInput("unsupported_format", f"format must be one of {', '.join(A.FORMATS)}")
        ctx = Context(self, context_id, settings, voice)
        self.contexts[context_id] = ctx
        ctx.worker = asyncio.create_task(ctx.run())
        return ctx

    async def clear(self, context_id: str | None, *, reopen: bool = True) -> None:
        """Barge-in: stop the context's audio now, forget its text; the context stays open for more
        (`reopen=False`: it closes too, as ElevenLabs' close_context mid-utterance)."""
        ctx = self.get(context_id)
        worker = ctx.worker
        ctx.cancelled = True
        ctx.clear()
        if worker is not None and not worker.done():
            worker.cancel()  # no audio of this context is sent after this point
        await self.sink.cleared(ctx)
        await self._record(ctx, 499 if ctx.samples else 200)
        if not reopen:
            del self.contexts[context_id]
            if worker is not None:
                asyncio.ensure_future(_reap(worker))
            if self._close_requested and not self.contexts:
                self._closed.set()
            return
        fresh = Context(self, context_id, ctx.settings, ctx.voice)
        fresh.request_id = f"{ctx.request_id}:{uuid.uuid4().hex[:8]}"
        self.contexts[context_id] = fresh
        fresh.worker = asyncio.create_task(fresh.run())
        if worker is not None:
            asyncio.ensure_future(_reap(worker))

    def end(self, context_id: str | None) -> None:
        """Speak what is buffered, then `done` and the context closes."""
        ctx = self.get(context_id)
        if not ctx.ended:
            ctx.ended = True
            ctx.flush(end=True)

    async def finished(self, ctx: Context, status: int) -> None:
        if self.contexts.get(ctx.context_id) is ctx:
            del self.contexts[ctx.context_id]
        outcome = await self._record(ctx, status)
        if status == 200:
            await self.sink.done(ctx, outcome)
        elif ctx.context_id is None:
            self._closed.set()  # the default context failed: the connection ends with it
        if self._close_requested and not self.contexts:
            self._closed.set()

    async def _record(self, ctx: Context, status: int) -> Outcome:
        outcome = Outcome(engine=ctx.engine, voice_id=ctx.settings.voice_id, characters=ctx.characters,
                          audio_seconds=ctx.audio_seconds, status=status)
        if not ctx.recorded:
            ctx.recorded = True
            await self.flow.record(self.caller(ctx), outcome)
        return outcome

    def closing_requested(self) -> None:
        """Every context has been ended: the session is over once their audio is out."""
        self._close_requested = True
        if not self.contexts:
            self._closed.set()

    async def next_message(self, receive: Callable[[], Awaitable[M]], timeout_s: float,
                           ending: Callable[[], bool]) -> M:
        """The client's next message. Silence is fine while audio is in flight or the socket is ending;
        otherwise `timeout_s` of it is the inactivity timeout."""
        while True:
            try:
                return await asyncio.wait_for(receive(), timeout_s)
            except TimeoutError:
                if self.busy or ending():
                    continue
                raise InvalidInput("inactivity_timeout",
                                   f"no message for {timeout_s:g} s; send text or close the socket") from None

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def abort(self) -> None:
        """The connection is gone: cancel every context and record what each one spoke."""
        for ctx in list(self.contexts.values()):
            ctx.cancelled = True
            if ctx.worker is not None and not ctx.worker.done():
                ctx.worker.cancel()  # its engine requests end in the background
                asyncio.ensure_future(_reap(ctx.worker))
            await self._record(ctx, 499)
        self.contexts.clear()


async def _reap(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(BaseException):
        await task
