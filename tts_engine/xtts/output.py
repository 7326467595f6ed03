"""Per-request output: turning a job's latents into chunks on its stream, and ending the stream once.

The decode loop calls `after_token()` for every token. With a vocoder thread (`VocodeWorker`) due
chunks are handed to it and the loop decodes on; the worker calls back into this object only
(`run_segments`, `worker_failed`). Without one, chunks are vocoded between decode steps.

Ownership: only the decode loop (or a stopped engine) frees batcher rows; the vocoder thread ends
streams with `free_row=False` and files a stop request, so the loop frees the row at its next turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tts_engine.xtts.batcher import DecodeBatcher, Job
from tts_engine.xtts.stats import EngineStats
from tts_engine.xtts.stream import END, StopRequests, StreamItem, SynthesisStream
from tts_engine.xtts.types import SAMPLE_RATE, AudioChunk, EngineError
from tts_engine.xtts.vocode_batch import Outcome, Planned, vocode_planned
from tts_engine.xtts.vocode_worker import Segment, VocodeWorker
from tts_engine.xtts.vocoding import FrameDecoder, LatentFrames, SentenceVocoder, WindowConfig

logger = logging.getLogger(__name__)

Vocoder = Callable[..., torch.Tensor]  # latents [1, T, D], g=speaker -> waveform (HifiDecoder's call)


@dataclass
class CollectedSentence:
    """One sentence of an offline run (tts_engine.xtts.offline): codes, latents [T, D] on CPU, stop seen."""

    codes: list[int]
    latents: torch.Tensor
    stopped: bool


@dataclass(eq=False)
class RequestState:
    """What the engine keeps per request beside the batcher's Job."""

    stream: SynthesisStream | None
    speaker: torch.Tensor  # [1, 512, 1] for the vocoder
    submitted: float
    vocoder: SentenceVocoder | None = None
    chunk_index: int = 0
    last_chunk_latents: int = 0
    scheduled_chunks: int = 0  # chunks handed to the vocoder thread (decode loop's count)
    scheduled_end: int = 0  # frames of the current sentence handed to the vocoder thread
    first_chunk_at: float | None = None
    closed: bool = False  # the stream has received its end (or an error)
    collect: list[CollectedSentence] | None = None  # offline runs: per-sentence results, no audio

    @property
    def cancelled(self) -> bool:
        return self.stream is not None and self.stream.cancelled


def _state(job: Job) -> RequestState:
    assert job.context is not None, "a job reaches the loop only with its request state"
    return job.context


class RequestOutputs:
    """Chunks out of latents for every running request, and the one place streams are ended."""

    def __init__(self, batcher: DecodeBatcher, stats: EngineStats, stops: StopRequests, *, vocoder: Vocoder,
                 frame_decoder: FrameDecoder | None, window: WindowConfig, stride_ratio: float, rate_ratio: float,
                 device: torch.device, pipeline: bool, vocoder_threads: int,
                 vocode_batch: int = 1):
        self.batcher = batcher
        self.stats = stats
        self.stops = stops
        self.vocoder = vocoder
        self.frame_decoder = frame_decoder  # replaceable (benchmarks time it); read when a sentence starts
        self.window = window
        self.stride_ratio = stride_ratio
        self.rate_ratio = rate_ratio
        self.device = device
        self._close_lock = threading.Lock()
        # Vocoding beside the decode loop; without a frame-level decoder each sentence is vocoded whole.
        self.worker = (VocodeWorker(self, threads=vocoder_threads, batch=vocode_batch)
                       if pipeline and frame_decoder is not None else None)

    # -- decode-loop side ------------------------------------------------------------------

    def after_token(self, job: Job, sentence_done: bool) -> None:
        state = _state(job)
        if state.collect is not None:  # offline run: no audio
            if sentence_done:
                latents = torch.stack(job.latents).float().cpu()
                state.collect.append(CollectedSentence(list(job.codes), latents, job.stopped))
                self._next_sentence_or_end(job, None)
            return
        if state.cancelled:
            self.finish_cancelled(job)
            return
        n = len(job.latents)
        if self.worker is not None:
            self._schedule(self.worker, job, state, n, sentence_done)
            return
        if sentence_done:
            self._next_sentence_or_end(job, self._vocode_final(job, state))
            return
        due = job.params.first_chunk_tokens if state.chunk_index == 0 else job.params.chunk_tokens
        if self.frame_decoder is not None and n - state.last_chunk_latents >= due:
            audio = self._sentence_vocoder(job, state).chunk(torch.stack(job.latents), final=False)
            if audio is not None and audio.size:
                state.last_chunk_latents = n
                self._emit(state, audio, is_last=False)

    def _schedule(self, worker: VocodeWorker, job: Job, state: RequestState, n: int, sentence_done: bool) -> None:
        """Hand due work to the vocoder thread."""
        vocoder = self._sentence_vocoder(job, state)
        first = state.first_chunk_at is None
        if sentence_done:
            latents = torch.stack(job.latents)
            state.vocoder = None
            state.last_chunk_latents = state.scheduled_end = 0
            state.scheduled_chunks += 1
            more = self.batcher.next_sentence(job)
            worker.schedule(job, Segment(vocoder, latents, final=True, last=not more), first)
            return
        due = job.params.first_chunk_tokens if state.scheduled_chunks == 0 else job.params.chunk_tokens
        if n - state.last_chunk_latents < due:
            return
        end = vocoder.frames.available(n) - self.window.lookahead_frames
        if end <= state.scheduled_end:
            return  # no frame is final yet: try again after the next token
        state.scheduled_end = end
        state.last_chunk_latents = n
        state.scheduled_chunks += 1
        segment = Segment(vocoder, torch.stack(job.latents), final=False, last=False, first=state.scheduled_chunks == 1)
        worker.schedule(job, segment, first)

    # -- vocoder-thread side ---------------------------------------------------------------

    def run_segments(self, items: list[tuple[Job, Segment]], batch: int) -> list[tuple[Job, BaseException]]:
        """Vocode one segment per job, their windows `batch` at most per generator call, and emit the audio.

        A job cancelled before its window is planned, or while the batch was vocoded, ends without
        more audio. Returns the jobs whose own vocoding failed (the worker fails their streams).
        """
        failed: list[tuple[Job, BaseException]] = []
        live: list[tuple[Job, Segment]] = []
        planned: list[Planned] = []
        for job, segment in items:
            state = _state(job)
            if state.closed:
                continue
            if state.cancelled:  # decoding may be over: the loop never sees it
                self._end_cancelled(job)
                continue
            try:
                window = segment.vocoder.plan(segment.latents, final=segment.final)
            except Exception as exc:  # noqa: BLE001 - this request's own failure
                failed.append((job, exc))
                continue
            live.append((job, segment))
            planned.append(Planned(segment.vocoder, window))

        def done(i: int, outcome: Outcome) -> None:
            job, segment = live[i]
            if isinstance(outcome, BaseException):
                failed.append((job, outcome))
                return
            try:
                self._deliver(job, segment, outcome)
            except Exception as exc:  # noqa: BLE001 - this request's own failure
                failed.append((job, exc))

        vocode_planned(planned, done, batch, on_call=self.stats.record_vocode_batch)
        return failed

    def _deliver(self, job: Job, segment: Segment, audio: np.ndarray | None) -> None:
        """Emit a vocoded segment's audio (and the end, after the request's last one)."""
        state = _state(job)
        if state.closed:
            return
        if state.cancelled:  # cancelled while its window was vocoded: no more audio
            self._end_cancelled(job)
            return
        if not segment.final:
            if audio is not None and audio.size:
                self._emit(state, audio, is_last=False)
            return
        if audio is not None and (audio.size or segment.last):
            self._emit(state, audio, is_last=segment.last)
        if segment.last and self.close(job, END, free_row=False):
            self.stats.add("requests_completed")

    def _end_cancelled(self, job: Job) -> None:
        if self.worker is not None:
            self.worker.drop(job)
        if self.close(job, END, free_row=False):
            self.stats.add("requests_cancelled")

    def worker_failed(self, job: Job, error: BaseException) -> None:
        """A vocoding failure: end the stream now; the decode loop frees the row (it owns the batcher)."""
        if self.close(job, EngineError(f"vocoding failed: {type(error).__name__}: {error}"), free_row=False):
            self.stats.add("requests_failed")
        self.stops.add(job)

    # -- vocoding --------------------------------------------------------------------------

    def _sentence_vocoder(self, job: Job, state: RequestState) -> SentenceVocoder:
        if state.vocoder is None:
            assert self.frame_decoder is not None
            frames = LatentFrames(job.params.speed, self.stride_ratio, self.rate_ratio)
            state.vocoder = SentenceVocoder(frames, self.frame_decoder, state.speaker, self.window)
        return state.vocoder

    def _vocode_final(self, job: Job, state: RequestState) -> np.ndarray:
        latents = torch.stack(job.latents)
        if self.frame_decoder is not None:
            audio = self._sentence_vocoder(job, state).chunk(latents, final=True)
            assert audio is not None  # a final chunk always returns (possibly empty) audio
        else:
            audio = self.vocode_whole(latents, state.speaker, job.params.speed)
        state.vocoder = None
        state.last_chunk_latents = 0
        return audio

    def vocode_whole(self, latents: torch.Tensor, speaker: torch.Tensor, speed: float = 1.0) -> np.ndarray:
        """Whole-utterance vocoding of latents [T, D], as the reference `Xtts.inference` does it."""
        z = latents.float()[None].to(self.device)
        length_scale = 1.0 / max(speed, 0.05)
        if length_scale != 1.0:
            z = F.interpolate(z.transpose(1, 2), scale_factor=length_scale, mode="linear").transpose(1, 2)
        with torch.inference_mode():
            wav = self.vocoder(z, g=speaker)
        return wav.reshape(-1).float().cpu().numpy()

    # -- ending ----------------------------------------------------------------------------

    def _next_sentence_or_end(self, job: Job, audio: np.ndarray | None) -> None:
        more = self.batcher.next_sentence(job)
        if audio is not None and (audio.size or not more):
            self._emit(_state(job), audio, is_last=not more)
        if not more and self.close(job, END):
            self.stats.add("requests_completed")

    def _emit(self, state: RequestState, audio: np.ndarray, is_last: bool) -> None:
        if state.first_chunk_at is None:
            state.first_chunk_at = time.monotonic()
            self.stats.observe_first_chunk(state.first_chunk_at - state.submitted)
        self.stats.add("audio_seconds", audio.size / SAMPLE_RATE)
        if state.stream is not None:
            state.stream.put(AudioChunk(audio=audio, index=state.chunk_index, is_last=is_last))
        state.chunk_index += 1

    def close(self, job: Job, item: StreamItem, free_row: bool = True) -> bool:
        """Free the job's row and end its stream with `item`, once. False when it was already closed.

        Only the decode loop (or a stopped engine) frees rows; the vocoder thread passes free_row=False.
        """
        if free_row and job.row is not None:
            self.batcher.remove(job)
        if free_row and self.worker is not None:
            self.worker.drop(job)
        state = job.context
        with self._close_lock:
            if state is None or state.closed:
                return False
            state.closed = True
        if state.stream is not None:
            state.stream.put(item)
        return True

    def fail(self, job: Job, error: BaseException) -> None:
        if self.close(job, error):
            self.stats.add("requests_failed")

    def finish_cancelled(self, job: Job) -> None:
        if self.close(job, END):
            self.stats.add("requests_cancelled")
