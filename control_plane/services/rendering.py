"""Rendering: a prepared plan → engine streams → post-processing → PCM (and encoded) chunks.

Segments are synthesised in order; each engine stream is volume-adjusted, pitch-shifted when asked
(that one segment is buffered: the shift needs it whole), resampled to the output rate by a
streaming resampler, and handed on as it arrives. Planned silences are inserted exactly
(round(ms × rate / 1000) samples at the output rate). Mark times come from the audio actually
produced: a mark inside a segment is placed in proportion to its character offset within that
segment's real duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from control_plane import stage_timing
from control_plane.services import audio as A
from control_plane.services.engine_port import EnginePort, engine_errors
from control_plane.services.planning import SILENT_DB, Segment
from control_plane.services.synthesis import Prepared
from control_plane.services.word_timing import estimate_words
from tts_contract import NATIVE_RATES
from tts_contract.fairness import Share

_END = object()  # end of one segment's audio in its queue
_SegmentWord = tuple[int, int, float, float]  # char_start, char_end (in the segment), start_s, end_s


@dataclass(frozen=True)
class MarkEvent:
    name: str
    time_s: float


@dataclass(frozen=True)
class WordTiming:
    """One spoken word: its time in the audio (s) and where it is in the text (character offsets)."""

    word: str
    start_s: float
    end_s: float
    char_start: int
    char_end: int


@dataclass(frozen=True)
class WordsEvent:
    words: list[WordTiming]


@dataclass
class RenderStats:
    samples: int = 0
    rate: int = 0
    first_audio_s: float | None = None
    marks: list[MarkEvent] = field(default_factory=list)
    words: list[WordTiming] = field(default_factory=list)

    @property
    def audio_seconds(self) -> float:
        return self.samples / self.rate if self.rate else 0.0


class Rendering:
    """One prepared request's audio from the engines; iterate `pcm()` or `encoded()` once."""

    def __init__(self, engine: EnginePort, prepared: Prepared, request_id: str = "",
                 share: Share | None = None) -> None:
        self.engine = engine
        self.prepared = prepared
        self.request_id = request_id
        self.share = share
        self.stats = RenderStats(rate=prepared.rate)
        self._started = time.perf_counter()
        stage_timing.mark("render")

    def _emit(self, x: np.ndarray) -> np.ndarray:
        if x.size and self.stats.first_audio_s is None:
            self.stats.first_audio_s = time.perf_counter() - self._started
            stage_timing.mark("first_pcm")
        self.stats.samples += x.size
        return x

    async def pcm(self) -> AsyncIterator[np.ndarray | MarkEvent | WordsEvent]:
        """Float32 chunks at the output rate, and mark events once their time is known.

        The next segment's engine request starts as soon as the current one is audible (its first
        audio, or its end) and runs while it plays out (one segment of lookahead), so sentence
        boundaries add no round trip; starting both at once would have them share the engine's cores
        and delay the first audio. Leaving early cancels both.
        """
        p = self.prepared
        rate = p.rate
        segments = p.plan.segments
        feeds: dict[int, tuple[asyncio.Queue[Any], asyncio.Task[None]]] = {}

        def start(i: int) -> None:
            if i < len(segments) and segments[i].text and i not in feeds:
                queue: asyncio.Queue[Any] = asyncio.Queue()
                feeds[i] = (queue, asyncio.create_task(self._feed(segments[i], queue)))

        offsets, source = _segment_offsets(p)
        try:
            with engine_errors():
                start(0)
                for i, seg in enumerate(segments):
                    if not seg.text:
                        start(i + 1)
                    if seg.silence_before_ms:
                        yield self._emit(A.silence(seg.silence_before_ms, rate))
                    begin = self.stats.samples
                    if seg.text:
                        queue = feeds[i][0]
                        while (item := await queue.get()) is not _END:
                            if isinstance(item, BaseException):
                                raise item
                            if isinstance(item, list):
                                words = [WordTiming(source[offsets[i] + a:offsets[i] + b],
                                                    round(begin / rate + t0, 4), round(begin / rate + t1, 4),
                                                    offsets[i] + a, offsets[i] + b) for a, b, t0, t1 in item]
                                self.stats.words.extend(words)
                                yield WordsEvent(words)
                            elif item.size:
                                start(i + 1)
                                yield self._emit(item)
                    start(i + 1)
                    length = self.stats.samples - begin
                    for name, offset in seg.marks:
                        frac = offset / len(seg.text) if seg.text else 0.0
                        mark = MarkEvent(name, round((begin + frac * length) / rate, 4))
                        self.stats.marks.append(mark)
                        yield mark
                    if seg.silence_after_ms:
                        yield self._emit(A.silence(seg.silence_after_ms, rate))
        finally:
            for _, task in feeds.values():
                task.cancel()  # closes the task's engine stream: the engine cancels the request
            for _, task in feeds.values():
                with contextlib.suppress(BaseException):
                    await task

    async def _feed(self, seg: Segment, queue: asyncio.Queue[Any]) -> None:
        try:
            async for chunk in self._segment_audio(seg):
                queue.put_nowait(chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            queue.put_nowait(exc)
            return
        queue.put_nowait(_END)

    def _engine_stream(self, seg: Segment) -> AsyncIterator[Any]:
        voice = self.prepared.voices[seg.voice_id]
        if voice.engine == "piper":
            return self.engine.stream_piper(seg.text, speed=seg.speed, request_id=self.request_id, share=self.share)
        assert voice.conditioning is not None, "an XTTS voice is resolved with its conditioning"
        return self.engine.stream_xtts(
            seg.text, seg.language, voice.conditioning.gpt_cond_latent, voice.conditioning.speaker_embedding,
            speed=seg.speed, seed=self.prepared.request.seed, request_id=self.request_id, share=self.share,
        )

    async def _segment_audio(self, seg: Segment) -> AsyncIterator[np.ndarray | list[_SegmentWord]]:
        """The segment's audio at the output rate, and its words (offsets in the segment's text, seconds
        from its start) as soon as they are known: per chunk from engines that time them, else at the end."""
        p = self.prepared
        stream = self._engine_stream(seg)
        resampler: A.StreamingResampler | None = None
        held: list[np.ndarray] = []
        native = NATIVE_RATES[p.voices[seg.voice_id].engine]
        at = 0  # native samples of this segment so far
        timed = False
        try:
            async for chunk in stream:
                native = chunk.sample_rate
                if chunk.words is not None:
                    timed = True
                    yield [(a, b, (at + s0) / native, (at + s1) / native) for a, b, s0, s1 in chunk.words]
                at += chunk.samples.size
                if seg.pitch != 1.0:
                    held.append(chunk.samples)
                    continue
                if resampler is None:
                    resampler = A.StreamingResampler(native, p.rate)
                yield await off_loop(resampler.process, _apply_volume(chunk.samples, seg.volume_db))
        finally:
            await stream.aclose()  # type: ignore[attr-defined]  # cancels the engine request if we stop early
        if not timed and at:
            yield estimate_words(seg.text, at / native)
        if held:
            whole, gain = np.concatenate(held), seg.volume_db
            yield await asyncio.to_thread(
                lambda: A.resample(_apply_volume(A.pitch_shift(whole, native, seg.pitch), gain), native, p.rate))
        elif resampler is not None:
            yield resampler.process(np.zeros(0, np.float32), final=True)

    async def encoded(self) -> AsyncIterator[bytes | MarkEvent | WordsEvent]:
        """Encoded bytes as they are produced, interleaved with mark and word events."""
        encoder = A.StreamEncoder(self.prepared.fmt, self.prepared.rate)
        async for item in self.pcm():
            if not isinstance(item, np.ndarray):
                yield item
                continue
            data = await off_loop(encoder.encode, item)
            if data:
                stage_timing.mark("first_encoded")
                yield data
        tail = encoder.finish()
        if tail:
            yield tail


INLINE_SAMPLES = 4096  # below this a resample or encode takes less than a thread hop


async def off_loop(fn: Callable[[np.ndarray], Any], x: np.ndarray) -> Any:
    """`fn(x)` on a worker thread when the chunk is long enough to hold the event loop up."""
    if x.size <= INLINE_SAMPLES:
        return fn(x)
    return await asyncio.to_thread(fn, x)


def _segment_offsets(p: Prepared) -> tuple[list[int], str]:
    """Where each segment's text starts in the text word offsets refer to: the request's plain text
    when every segment is found in it in order, else the segments' texts joined by spaces (SSML)."""
    texts = [seg.text for seg in p.plan.segments]
    source = p.request.text or ""
    offsets, cursor = [], 0
    for text in texts:
        at = source.find(text, cursor) if text else cursor
        if at < 0:
            break
        offsets.append(at)
        cursor = at + len(text)
    else:
        return offsets, source
    offsets, cursor = [], 0
    for text in texts:
        offsets.append(cursor)
        cursor += len(text) + (1 if text else 0)
    return offsets, " ".join(t for t in texts if t)


def _apply_volume(x: np.ndarray, gain_db: float) -> np.ndarray:
    if gain_db <= SILENT_DB:
        return np.zeros_like(x)
    return A.apply_gain(x, gain_db)
