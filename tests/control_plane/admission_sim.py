"""A discrete-event model of the gateway's fairness benchmark on a fake clock: the real `Admission` in front of an
engine that runs up to `slots` requests at once, sharing its rate equally between the requests running (Piper's
worker threads; a batch in XTTS), the rest waiting in the engine's own weighted fair queue (tts_engine.fair_queue),
and clients that each send one request after another and, refused, wait the Retry-After they were given (as
bench/fairness_clients.py's do). The admission gate's question (`refuse_early`) is asked first, as the gateway
does for a key it knows.

It answers in milliseconds what a 30 s run on the real stack answers with noise: what each tenant is served, and
why (the backlogs, the requests running against waiting, the refusals and the Retry-After given).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from admission_helpers import Clock, measured

from control_plane.services.admission import Admission, Overloaded, Ticket
from tts_contract.fairness import Share
from tts_engine.fair_queue import FairQueue

MAX_BACKOFF_S = 60.0  # as the benchmark's clients


@dataclass(eq=False)
class _Request:
    tenant: Share
    client: int
    chars: int
    ticket: Ticket
    left: float = 0.0


@dataclass
class Engine:
    """`slots` requests run at once; `rate` characters/s in all once `full_at` or more run (fewer use less of
    the machine: one Piper request does not use both cores)."""

    rate: float = 230.0
    slots: int = 4
    full_at: int = 2
    running: list[_Request] = field(default_factory=list)
    waiting: FairQueue[_Request] = field(default_factory=FairQueue)

    def speed(self) -> float:
        """Characters/s of each running request."""
        return self.rate / max(len(self.running), self.full_at)


@dataclass
class Report:
    served: Counter[str] = field(default_factory=Counter)  # characters completed within the window
    admitted: Counter[str] = field(default_factory=Counter)
    clients_admitted: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    refused: Counter[str] = field(default_factory=Counter)
    retry_after: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # time-weighted means over the window, by tenant: backlog characters (admission's view), requests running
    # on the engine's slots and requests waiting in its fair queue
    backlog: Counter[str] = field(default_factory=Counter)
    running: Counter[str] = field(default_factory=Counter)
    waiting: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    busy_s: float = 0.0

    def ratio(self, a: str, b: str) -> float:
        return self.served[a] / self.served[b]

    def mean(self, what: Counter[str], tenant: str) -> float:
        return what[tenant] / self.seconds if self.seconds else 0.0


class Bench:
    """Tenants' clients against admission and one engine, event by event."""

    def __init__(self, admission: Admission, clock: Clock, engine: Engine, seed: int = 1,
                 text_chars: Callable[[random.Random], int] = lambda rng: rng.randint(55, 66),
                 gate: bool = True, gap_s: float = 0.005) -> None:
        self.gap_s = gap_s  # from a stream's end in the gateway to the client's next request arriving
        self.admission, self.clock, self.engine = admission, clock, engine
        self.rng = random.Random(seed)
        self.text_chars = text_chars
        self.gate = gate
        self._events: list[tuple[float, int, Share, int]] = []  # (when, seq, tenant, client) a client sends
        self._seq = itertools.count()
        self._ids = itertools.count()
        self.report = Report()
        self._window_from = 0.0
        self._until: dict[str, float] = {}  # tenant -> when its clients stop sending

    def clients(self, share: Share, n: int, start: float = 0.0, spacing: float | None = None,
                stop_after: float | None = None) -> None:
        """`n` clients of `share` sending their first requests `start` s from now: within 50 ms in random order,
        or with `spacing`, one every `spacing` s (as one event loop writes them); with `stop_after`, they send
        nothing more that many seconds from now."""
        if stop_after is not None:
            self._until[share.tenant] = self.clock.now + stop_after
        for i in range(n):
            offset = self.rng.uniform(0, 0.05) if spacing is None else i * spacing
            self._at(self.clock.now + start + offset, share, i)

    def periodic(self, share: Share, every: float, count: int) -> None:
        """A quiet tenant: one request every `every` s (client ids from 10_000: never a retrying loop)."""
        for i in range(count):
            self._at(self.clock.now + i * every, share, 10_000 + i)

    def _at(self, when: float, share: Share, client: int) -> None:
        heapq.heappush(self._events, (when, next(self._seq), share, client))

    def run(self, seconds: float, measure_after: float = 0.0) -> Report:
        end = self.clock.now + seconds
        self._window_from = self.clock.now + measure_after
        while True:
            due = self._events[0][0] if self._events else end
            done_at = self._next_completion()
            step_to = min(due, done_at, end)
            self._advance(step_to)
            if step_to >= end:
                break
            if done_at <= due:
                self._complete()
            else:
                _, _, share, client = heapq.heappop(self._events)
                self._send(share, client)
        return self.report

    def _next_completion(self) -> float:
        if not self.engine.running:
            return float("inf")
        return self.clock.now + min(r.left for r in self.engine.running) / self.engine.speed()

    def _advance(self, to: float) -> None:
        dt = to - self.clock.now
        if dt <= 0:
            return
        speed = self.engine.speed()
        for r in self.engine.running:
            r.left -= speed * dt
        measured_dt = max(0.0, to - max(self.clock.now, self._window_from))
        if measured_dt > 0:
            rep = self.report
            rep.seconds += measured_dt
            rep.busy_s += measured_dt if self.engine.running else 0.0
            for name, load in self.admission.load("piper").tenants.items():
                rep.backlog[name] += load.backlog_chars * measured_dt
            for r in self.engine.running:
                rep.running[r.tenant.tenant] += measured_dt
            for r in self.engine.waiting:
                rep.waiting[r.tenant.tenant] += measured_dt
        self.clock.now = to

    def _send(self, share: Share, client: int) -> None:
        if self.clock.now >= self._until.get(share.tenant, float("inf")):
            return
        chars = self.text_chars(self.rng)
        request_id = f"r{next(self._ids)}"
        measuring = self.clock.now >= self._window_from
        try:
            refusal = self.admission.refuse_early(share) if self.gate else None
            if refusal is not None:
                raise refusal
            ticket = self.admission.admit("piper", request_id, chars, share)
        except Overloaded as exc:
            retry = float(exc.headers["Retry-After"])
            if measuring:
                self.report.refused[share.tenant] += 1
                self.report.retry_after[share.tenant].append(retry)
            if client < 10_000:
                self._at(self.clock.now + min(retry, MAX_BACKOFF_S), share, client)
            return
        if measuring:
            self.report.admitted[share.tenant] += 1
            self.report.clients_admitted[share.tenant].add(client)
        self.admission.started("piper", request_id, chars, share.tenant)
        request = _Request(share, client, chars, ticket, float(chars))
        if len(self.engine.running) < self.engine.slots:
            self.engine.running.append(request)
        else:
            self.engine.waiting.push(request, share, chars)

    def _complete(self) -> None:
        finished = min(self.engine.running, key=lambda r: r.left)
        self.engine.running.remove(finished)
        if self.engine.waiting:
            self.engine.running.append(self.engine.waiting.pop())
        tenant = finished.tenant.tenant
        self.admission.finished("piper", finished.chars, completed=True, tenant=tenant)
        self.admission.release(finished.ticket)
        if self.clock.now >= self._window_from:
            self.report.served[tenant] += finished.chars
        if finished.client < 10_000:
            self._at(self.clock.now + self.gap_s, finished.tenant, finished.client)  # the client's next request


def gateway(rate: float = 230.0, slots: int = 4, max_wait_s: float = 1.0, min_inflight: int = 4,
            seed: int = 1, gate: bool = True, gap_s: float = 0.005) -> Bench:
    """The benchmark's setting: admission as the gateway configures it, Piper's 4 workers on 2 cores."""
    clock = Clock()
    admission = Admission(max_wait_s=max_wait_s, min_inflight=min_inflight, clock=clock,
                          rng=random.Random(seed))
    measured(admission, clock, rate)
    return Bench(admission, clock, Engine(rate=rate, slots=slots), seed=seed, gate=gate, gap_s=gap_s)
