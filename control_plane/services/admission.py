"""Admission control: a request the engine could not start in time is refused at once (503 + Retry-After).

Without it every request joins the engine's queue, and under overload a caller waits a minute for
its first audio: a failure that looks like a success. Each engine's capacity is estimated from what
it is measured to do, here and now:

- **backlog**: the characters of the engine requests this replica has in flight (sent and not
  finished), plus the first segments of requests admitted and not sent yet (so a burst of arrivals
  cannot all be admitted against the same empty backlog);
- **service rate**: characters the engine completes per second while it has work (an exponentially
  weighted average over a few seconds of busy time, so it follows the load, the hardware and the
  number of Triton replicas behind this replica without configuration).

A new request's expected wait for its first audio is backlog / rate: the engines serve requests in
arrival order once their workers or decode rows are taken, so the new request's first segment
starts after the work ahead of it. (For an engine that batches, XTTS, this is conservative.) While
fewer than `min_inflight` engine requests are in flight every request is admitted: that is also how
the rate is first measured. Past that, with no measurement yet, requests are refused; with one, a
request whose expected wait exceeds `max_wait_s` is refused with a Retry-After of the time the
backlog needs to come back under the bound.

Requests served from the cache are never refused: they cost the engine nothing.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from control_plane.errors import Unavailable

if TYPE_CHECKING:
    import numpy as np

    from control_plane.metrics import Metrics
    from control_plane.services.engine_port import AudioChunk, Conditioning, EnginePort, ModelInfo

RATE_TIME_CONSTANT_S = 5.0  # busy seconds over which the service rate is averaged
MIN_SAMPLE_S = 0.2  # busy time gathered before a rate sample is taken (completions arrive in bursts)
PRESSURE_TIME_CONSTANT_S = 10.0  # seconds over which refusals and admissions are counted for Retry-After
MAX_RETRY_AFTER_S = 30  # before the jitter (x 1 to 1.5)


@dataclass(eq=False)
class Ticket:
    """An admitted request's place in its engine's backlog until its first engine call starts."""

    engine: str
    request_id: str
    chars: int


class Overloaded(Unavailable):
    """The engine would make this request wait too long for its first audio."""


@dataclass
class EngineLoad:
    """One engine's work in flight from this replica, and how fast it gets through it."""

    inflight: int = 0
    inflight_chars: int = 0
    # request id -> tickets of requests admitted and not sent yet (a list: ids come from clients'
    # X-Request-ID and need not be unique)
    reserved: dict[str, list[Ticket]] = field(default_factory=dict)
    rate: float | None = None  # characters per busy second
    _busy_s: float = 0.0  # busy time since the last rate sample
    _done_chars: int = 0  # characters completed since the last rate sample
    _since: float = 0.0  # when the busy time was last brought up to date
    # Recent decisions, exponentially decayed (PRESSURE_TIME_CONSTANT_S): the Retry-After feedback.
    _admitted: float = 0.0
    _advertised: float = 0.0  # sum of the Retry-After values given with the recent refusals
    _decided_at: float = 0.0

    @property
    def backlog_chars(self) -> int:
        return self.inflight_chars + sum(t.chars for tickets in self.reserved.values() for t in tickets)

    @property
    def waiting(self) -> int:
        return sum(len(tickets) for tickets in self.reserved.values())

    def unreserve(self, request_id: str, ticket: Ticket | None = None) -> None:
        """Drop `ticket` (or the oldest of the request id's) from the reservations."""
        tickets = self.reserved.get(request_id)
        if not tickets:
            return
        if ticket is None:
            tickets.pop(0)
        elif ticket in tickets:
            tickets.remove(ticket)
        if not tickets:
            del self.reserved[request_id]

    def tick(self, now: float) -> None:
        if self.inflight:
            self._busy_s += now - self._since
        self._since = now

    def decided(self, now: float, *, shed: bool, retry_after: float = 0.0) -> None:
        decay = math.exp(-(now - self._decided_at) / PRESSURE_TIME_CONSTANT_S)
        self._admitted, self._advertised = self._admitted * decay, self._advertised * decay
        self._decided_at = now
        if shed:
            self._advertised += retry_after
        else:
            self._admitted += 1

    def retry_after(self, now: float, floor: int, jitter: float = 1.0) -> int:
        """When a refused caller should come back. Callers that honour Retry-After and come back too soon are
        refused again, each refusal costing this replica work while the engine serves no one more: with k
        recent refusals per admission at an advertised delay T, the callers waiting would all be admitted
        after about k·T, so that is the delay given (at least `floor`). It settles where refusals come about
        as often as admissions. `jitter` (1 to 1.5) spreads callers refused together, so they do not all come
        back in the same second."""
        decay = math.exp(-(now - self._decided_at) / PRESSURE_TIME_CONSTANT_S)
        pressure = self._advertised * decay / max(self._admitted * decay, 1.0)  # k·T
        return math.ceil(max(floor, min(MAX_RETRY_AFTER_S, pressure)) * jitter)

    def completed(self, chars: int) -> None:
        self._done_chars += chars
        if self._busy_s < MIN_SAMPLE_S:
            return
        sample = self._done_chars / self._busy_s
        weight = 1.0 - math.exp(-self._busy_s / RATE_TIME_CONSTANT_S)
        self.rate = sample if self.rate is None else self.rate + weight * (sample - self.rate)
        self._busy_s, self._done_chars = 0.0, 0


class Admission:
    def __init__(self, max_wait_s: float, min_inflight: int, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.max_wait_s = max_wait_s
        self.rng = rng or random.Random()
        self.min_inflight = min_inflight
        self.metrics = metrics
        self.clock = clock
        self.loads: dict[str, EngineLoad] = {}

    def load(self, engine: str) -> EngineLoad:
        if engine not in self.loads:
            self.loads[engine] = EngineLoad(_since=self.clock())
            if self.metrics is not None:  # read at scrape time
                load = self.loads[engine]
                self.metrics.admission_expected_wait.labels(engine=engine).set_function(
                    lambda: self.expected_wait(engine) or 0.0)
                self.metrics.engine_backlog.labels(engine=engine).set_function(lambda: float(load.backlog_chars))
                self.metrics.engine_service_rate.labels(engine=engine).set_function(lambda: load.rate or 0.0)
        return self.loads[engine]

    def expected_wait(self, engine: str) -> float | None:
        """Seconds a request arriving now would wait for the engine to start it; None before the engine's
        rate is measured."""
        load = self.load(engine)
        if load.rate is None or load.rate <= 0:
            return None
        return load.backlog_chars / load.rate

    def admit(self, engine: str, request_id: str, first_chars: int) -> Ticket:
        """Admit a request whose first engine call will carry `first_chars` characters, or raise Overloaded.
        The ticket counts in the backlog until the request's first engine call starts or `release(ticket)`."""
        load = self.load(engine)
        load.tick(self.clock())
        if self.max_wait_s > 0 and load.inflight + load.waiting >= self.min_inflight:
            wait = self.expected_wait(engine)
            if wait is None or wait > self.max_wait_s:
                self._count(engine, "shed")
                now = self.clock()
                retry = load.retry_after(now, 1 if wait is None else max(1, math.ceil(wait - self.max_wait_s)),
                                         jitter=self.rng.uniform(1.0, 1.5))
                load.decided(now, shed=True, retry_after=retry)
                expected = "" if wait is None else f" a new request would wait about {wait:.1f} s for its first " \
                    f"audio (this server's bound is {self.max_wait_s:g} s);"
                raise Overloaded("engine_overloaded", f"the {engine} engine is at capacity:{expected} retry in "
                                 f"{retry} s", headers={"Retry-After": str(retry)},
                                 fields={"retry_after_s": retry})
        load.decided(self.clock(), shed=False)
        ticket = Ticket(engine, request_id, first_chars)
        load.reserved.setdefault(request_id, []).append(ticket)
        self._count(engine, "admitted")
        return ticket

    def release(self, ticket: Ticket) -> None:
        """The request is over: a reservation it never used is given back."""
        self.load(ticket.engine).unreserve(ticket.request_id, ticket)

    def started(self, engine: str, request_id: str, chars: int) -> None:
        load = self.load(engine)
        load.tick(self.clock())
        load.unreserve(request_id)
        load.inflight += 1
        load.inflight_chars += chars

    def finished(self, engine: str, chars: int, *, completed: bool) -> None:
        load = self.load(engine)
        load.tick(self.clock())
        load.inflight -= 1
        load.inflight_chars -= chars
        if completed:
            load.completed(chars)

    def _count(self, engine: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.admission_decisions.labels(engine=engine, outcome=outcome).inc()

    def engine(self, port: EnginePort) -> MeteredEngine:
        return MeteredEngine(port, self)


class MeteredEngine:
    """The engine port, with every synthesis stream counted in its engine's load: work in flight while
    it runs, characters completed when it ends normally (a cancelled or failed stream measures nothing)."""

    def __init__(self, inner: EnginePort, admission: Admission) -> None:
        self.inner = inner
        self.admission = admission

    async def _metered(self, engine: str, text: str, request_id: str, stream: AsyncIterator[AudioChunk]
                       ) -> AsyncIterator[AudioChunk]:
        chars = len(text)
        self.admission.started(engine, request_id, chars)
        completed = False
        try:
            async for chunk in stream:
                yield chunk
            completed = True
        finally:
            self.admission.finished(engine, chars, completed=completed)
            await stream.aclose()  # type: ignore[attr-defined]

    def stream_piper(self, text: str, *, speed: float = 1.0, request_id: str = "") -> AsyncIterator[AudioChunk]:
        return self._metered("piper", text, request_id,
                             self.inner.stream_piper(text, speed=speed, request_id=request_id))

    def stream_xtts(self, text: str, language: str, gpt_cond_latent: np.ndarray, speaker_embedding: np.ndarray, *,
                    speed: float = 1.0, seed: int | None = None, request_id: str = "") -> AsyncIterator[AudioChunk]:
        return self._metered("xtts", text, request_id, self.inner.stream_xtts(
            text, language, gpt_cond_latent, speaker_embedding, speed=speed, seed=seed, request_id=request_id))

    async def server_ready(self) -> bool:
        return await self.inner.server_ready()

    async def model_ready(self, name: str) -> bool:
        return await self.inner.model_ready(name)

    async def model_info(self, refresh: bool = False) -> dict[str, ModelInfo]:
        return await self.inner.model_info(refresh)

    async def condition(self, audio: np.ndarray, sample_rate: int) -> Conditioning:
        return await self.inner.condition(audio, sample_rate)

    async def close(self) -> None:
        await self.inner.close()
