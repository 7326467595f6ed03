"""Streaming vocoding on its own thread, so HiFi-GAN runs beside the GPT decode instead of between steps.

The decode loop schedules a request's due chunks here and moves on; the worker vocodes them in
order per request and emits the audio. Two things follow from running the stages side by side:

- The decode loop and the vocoder each keep a core busy (or, on a GPU, the host work of one hides
  behind the other); a vocoded chunk no longer stalls every request's next token.
- When the vocoder falls behind, a request's waiting chunks of the same sentence merge into one
  window (its newest latents, vocoded once): each window costs its context and lookahead frames
  once, so the busier the engine, the less of HiFi-GAN's work is overhead.

Requests whose first chunk is still to come are served first, and a first chunk is never merged
into a later one (time to first audio); the rest take turns one segment at a time. A sentence's
final segment is never merged into the next sentence's. With several threads (XTTS_VOCODER_THREADS,
for CPU hosts whose decode loop leaves cores idle) different requests are vocoded at once, and one
request's segments still run one at a time, in order.

Batching across requests (XTTS_VOCODE_BATCH): a thread takes up to `batch` requests' next segments
at once, in the same priority order, and their windows share HiFi-GAN calls
(tts_engine.xtts.vocode_batch); each request still has at most one segment in flight, so its order,
merging and crossfade state are those of the one-at-a-time path. While other threads wait idle, a
thread leaves them their share of the ready requests, so threads and batching add up. By default
only a GPU batches: on a CPU one batched call measured slower than the same windows one by one.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from tts_engine.xtts.vocoding import SentenceVocoder

if TYPE_CHECKING:
    from tts_engine.xtts.batcher import Job

logger = logging.getLogger(__name__)

DEFAULT_VOCODE_BATCH = 8  # requests' windows per HiFi-GAN call at most on a GPU (XTTS_VOCODE_BATCH)
CPU_VOCODE_BATCH = 1  # on a CPU one [B, D, F] call measured slower than B calls (docs/benchmarks.md)


def default_vocode_batch(device: torch.device) -> int:
    """Windows per HiFi-GAN call when XTTS_VOCODE_BATCH is "auto": batched on a GPU, one at a time on a CPU."""
    return DEFAULT_VOCODE_BATCH if device.type == "cuda" else CPU_VOCODE_BATCH


def parse_vocode_batch(text: str | None) -> int | None:
    """XTTS_VOCODE_BATCH as given ("auto" or empty: None, the device's default); ValueError unless >= 1."""
    value = (text or "auto").strip().lower()
    if value == "auto":
        return None
    batch = int(value)
    if batch < 1:
        raise ValueError(f"XTTS_VOCODE_BATCH must be auto or an integer >= 1, got {text!r}")
    return batch


@dataclass
class Segment:
    """Vocoder work for one sentence of one request: everything up to `latents` (all of its latents so far)."""

    vocoder: SentenceVocoder
    latents: torch.Tensor  # [T, D]
    final: bool  # the sentence has ended: vocode to its last frame
    last: bool  # ... and it was the request's last sentence: end the stream after it
    first: bool = False  # the request's first chunk: never grown by merging (time to first audio)


class SegmentOutput(Protocol):
    """Where vocoded segments go (tts_engine.xtts.output.RequestOutputs)."""

    def run_segments(self, items: list[tuple[Job, Segment]], batch: int) -> list[tuple[Job, BaseException]]:
        """Vocode one segment of each job (up to `batch` per generator call) and emit their audio.

        Returns the jobs whose own vocoding failed; the others' audio is out when it returns.
        """

    def worker_failed(self, job: Job, error: BaseException) -> None:
        """Vocoding `job` raised `error`: fail its stream."""


class VocodeWorker:
    """Threads running `Segment`s in order per job; `output` does the vocoding and emitting."""

    def __init__(self, output: SegmentOutput, threads: int = 1, batch: int = 1):
        if threads < 1:
            raise ValueError("threads must be >= 1")
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.threads = threads
        self.batch = batch
        self._output = output
        self._cv = threading.Condition()
        self._segments: dict[int, deque[Segment]] = {}  # id(job) -> its segments, oldest first
        self._jobs: dict[int, Job] = {}
        self._first: deque[int] = deque()  # jobs that have not emitted audio yet
        self._rest: deque[int] = deque()
        self._busy: set[int] = set()  # jobs a thread is vocoding now: not handed to another meanwhile
        self._idle = 0  # threads waiting for work
        self._running = False
        self._workers: list[threading.Thread] = []
        self.merged = 0  # segments folded into a later one (for stats and tests)

    def start(self) -> None:
        with self._cv:
            if self._running:
                return
            self._running = True
        self._workers = [threading.Thread(target=self._loop, name=f"xtts-vocoder-{i}", daemon=True)
                         for i in range(self.threads)]
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 10.0) -> list[Job]:
        """Stop the thread; returns the jobs that still had work (their streams must be failed)."""
        with self._cv:
            self._running = False
            self._cv.notify_all()
        for worker in self._workers:
            worker.join(timeout)
        self._workers = []
        with self._cv:
            left = list(self._jobs.values())
            self._segments.clear()
            self._jobs.clear()
            self._first.clear()
            self._rest.clear()
            self._busy.clear()
        return left

    @property
    def backlog(self) -> int:
        with self._cv:
            return sum(len(s) for s in self._segments.values())

    @property
    def waiting_jobs(self) -> int:
        """Jobs with a segment waiting (not counting one being vocoded now)."""
        with self._cv:
            return sum(1 for s in self._segments.values() if s)

    def schedule(self, job: Job, segment: Segment, first: bool) -> None:
        """Queue `segment` for `job` (merged into its newest waiting segment of the same sentence)."""
        key = id(job)
        with self._cv:
            queue = self._segments.get(key)
            if queue is None:
                queue = self._segments[key] = deque()
                self._jobs[key] = job
            newest = queue[-1] if queue else None
            if newest is not None and newest.vocoder is segment.vocoder and not newest.final and not newest.first:
                queue[-1] = segment  # the newer segment covers everything the older one would have
                self.merged += 1
            else:
                queue.append(segment)
            if key not in self._busy and key not in self._first and key not in self._rest:
                (self._first if first else self._rest).append(key)
            self._cv.notify()

    def _next(self) -> list[tuple[Job, Segment]] | None:
        """The next jobs' oldest segments, first chunks first: up to `batch`, less when other threads idle."""
        with self._cv:
            self._idle += 1
            while self._running and not (self._first or self._rest):
                self._cv.wait()
            self._idle -= 1
            if not self._running:
                return None
            ready = len(self._first) + len(self._rest)
            take = min(self.batch, -(-ready // (self._idle + 1)))  # idle threads get their share
            items: list[tuple[Job, Segment]] = []
            while len(items) < take and (self._first or self._rest):
                key = (self._first or self._rest).popleft()
                items.append((self._jobs[key], self._segments[key].popleft()))
                self._busy.add(key)
            if self._first or self._rest:
                self._cv.notify()  # what is left is another thread's
            return items

    def _done(self, job: Job) -> None:
        """A segment of `job` finished: its next one (if any) waits for the others' turn."""
        key = id(job)
        with self._cv:
            self._busy.discard(key)
            queue = self._segments.get(key)
            if queue:
                self._rest.append(key)
                self._cv.notify()
            elif queue is not None:
                del self._segments[key], self._jobs[key]

    def _loop(self) -> None:
        torch.set_grad_enabled(False)
        while (items := self._next()) is not None:
            try:
                failed = self._output.run_segments(items, self.batch)
            except Exception as exc:  # noqa: BLE001 - outside any one request's part: the batch's requests fail
                failed = [(job, exc) for job, _ in items]
            try:
                for job, error in failed:  # a vocoder failure fails its own request only
                    logger.warning("request failed in vocoding: %s", type(error).__name__)
                    self.drop(job)
                    self._output.worker_failed(job, error)
            finally:
                for job, _ in items:
                    self._done(job)

    def drop(self, job: Job) -> None:
        """Forget a job's waiting segments (cancelled or failed)."""
        key = id(job)
        with self._cv:
            self._segments.pop(key, None)
            self._jobs.pop(key, None)
            self._busy.discard(key)
            for order in (self._first, self._rest):
                if key in order:
                    order.remove(key)
