"""Admission control's estimate and decisions (services/admission.py), on a fake clock and a fake engine."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import numpy as np
import pytest
from admission_helpers import Clock, measured

from control_plane.metrics import Metrics
from control_plane.services.admission import Admission, Overloaded
from tts_contract.fairness import Share


def test_rate_follows_completed_work_per_busy_second() -> None:
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=2, clock=clock)
    measured(admission, clock, 200.0)
    assert admission.loads["piper"].rate == pytest.approx(200.0, rel=1e-6)
    clock.now += 60  # idle time is not service time: the rate stays what it was
    admission.started("piper", "a", 100)
    clock.now += 1.0
    admission.finished("piper", 100, completed=True)
    assert admission.loads["piper"].rate == pytest.approx(200.0 + (1 - np.exp(-1 / 5)) * (100 - 200), rel=1e-6)


def test_cancelled_work_measures_nothing() -> None:
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=2, clock=clock)
    measured(admission, clock, 100.0)
    admission.started("piper", "a", 500)
    clock.now += 0.5
    admission.finished("piper", 500, completed=False)
    assert admission.loads["piper"].rate == pytest.approx(100.0, rel=1e-6)
    assert admission.loads["piper"].backlog_chars == 0


def test_below_min_inflight_everything_is_admitted_even_unmeasured() -> None:
    admission = Admission(max_wait_s=0.1, min_inflight=3, clock=Clock())
    tickets = [admission.admit("xtts", f"r{i}", 1000) for i in range(3)]
    assert admission.expected_wait("xtts") is None
    with pytest.raises(Overloaded) as refused:
        admission.admit("xtts", "r3", 10)
    assert refused.value.status_code == 503 and refused.value.headers["Retry-After"] in ("1", "2")
    assert refused.value.code == "engine_overloaded"
    admission.release(tickets[0])
    admission.admit("xtts", "r4", 10)  # a slot came back


def test_refuses_past_the_bound_with_the_time_it_needs() -> None:
    clock = Clock()
    metrics = Metrics()
    admission = Admission(max_wait_s=1.0, min_inflight=1, metrics=metrics, clock=clock)
    measured(admission, clock, 100.0)
    admission.started("piper", "long", 450)  # 4.5 s of work ahead
    with pytest.raises(Overloaded) as refused:
        admission.admit("piper", "new", 30)
    assert 4 <= int(refused.value.headers["Retry-After"]) <= 6  # ceil(4.5 - 1.0), jittered
    assert refused.value.fields["retry_after_s"] == int(refused.value.headers["Retry-After"])
    assert "4.5 s" in refused.value.message
    clock.now += 4.0
    admission.finished("piper", 450, completed=True)
    admission.admit("piper", "new", 30)  # nothing in flight: admitted
    exposition = metrics.exposition().decode()
    assert 'tts_admission_decisions_total{engine="piper",outcome="shed"} 1.0' in exposition
    assert 'tts_admission_decisions_total{engine="piper",outcome="admitted"} 1.0' in exposition
    assert 'tts_engine_backlog_characters{engine="piper"} 30.0' in exposition


def test_refused_callers_come_back_one_after_another_at_the_pace_the_engine_serves_them() -> None:
    """Callers refused together are told to come back one after another, as fast as the engine serves requests
    like theirs, never all sent away for the longest wait; the schedule forgets once the tenant is served."""
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=1, clock=clock, rng=random.Random(7))
    measured(admission, clock, 100.0)
    admission.admit("piper", "served", 50)  # one admission: 0.5 s of work waiting
    admission.started("piper", "long", 500)  # and 5 s in flight: everything else is refused
    due = []
    for i in range(40):  # 40 callers refused within 4 s, each asking for 30 characters (0.3 s of the engine)
        clock.now += 0.1
        with pytest.raises(Overloaded) as refused:
            admission.admit("piper", f"r{i}", 30)
        due.append(clock.now + int(refused.value.headers["Retry-After"]))
    assert 5 <= due[0] - clock.now + 3.9 <= 8  # the first: ceil(5.5 s expected - 1 s bound), jittered by up to half
    steps = [b - a for a, b in zip(due, due[1:], strict=False)]
    assert all(step >= -0.9 for step in steps)  # in order (whole seconds in the header)
    assert due[-1] - due[0] == pytest.approx(39 * 0.15, abs=1.5)  # one every 0.15 s: twice the engine's pace
    assert len(set(due)) > 10  # spread out, not all at once
    admission.finished("piper", 500, completed=True)
    for i in range(30):  # the engine catches up and admits again: the schedule falls behind the clock
        clock.now += 1.0
        ticket = admission.admit("piper", f"ok{i}", 10)
        admission.release(ticket)
    admission.started("piper", "long", 500)
    with pytest.raises(Overloaded) as refused:
        admission.admit("piper", "late", 30)
    assert int(refused.value.headers["Retry-After"]) <= 8  # its own wait again: ceil(5.1 - 1), jittered


def test_a_heavier_tenants_refused_callers_come_back_sooner() -> None:
    """Beside each other, each tenant's refused callers are paced at its weighted share of the engine."""
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=1, clock=clock, rng=random.Random(7))
    measured(admission, clock, 100.0)
    heavy, light = Share("heavy", 3.0), Share("light", 1.0)
    admission.started("piper", "h", 600, "heavy")
    admission.started("piper", "l", 600, "light")
    spans = {}
    for share in (heavy, light):
        due = []
        for i in range(20):  # 20 callers each, 40 characters: 0.53 s at 3/4 of the engine, 1.6 s at 1/4, paced at
            # twice that
            with pytest.raises(Overloaded) as refused:
                admission.admit("piper", f"{share.tenant}{i}", 40, share)
            due.append(int(refused.value.headers["Retry-After"]))
        spans[share.tenant] = due[5] - due[0]
        assert max(due) <= 30  # never sent away for longer
    assert spans["heavy"] == pytest.approx(5 * 40 / 75 / 2, abs=1.0)
    assert spans["light"] == pytest.approx(5 * 40 / 25 / 2, abs=1.0)


def test_admitted_requests_count_before_they_are_sent() -> None:
    """A burst arriving at once is not all admitted against the same empty backlog."""
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=1, clock=clock)
    measured(admission, clock, 100.0)
    admitted = 0
    for i in range(50):
        try:
            admission.admit("piper", f"r{i}", 40)
            admitted += 1
        except Overloaded:
            pass
    # 40 chars each at 100 chars/s: the bound of 1 s is passed once 3 are waiting (1.2 s of work).
    assert admitted == 3
    load = admission.loads["piper"]
    assert load.backlog_chars == 120
    admission.started("piper", "r0", 40)  # the first call of r0 takes its reservation's place
    assert load.backlog_chars == 120 and load.waiting == 2 and load.inflight == 1


def test_tickets_with_the_same_request_id_stay_apart() -> None:
    admission = Admission(max_wait_s=1.0, min_inflight=10, clock=Clock())
    a = admission.admit("piper", "same", 10)
    b = admission.admit("piper", "same", 20)
    admission.started("piper", "same", 10)  # consumes the oldest (a)
    admission.release(a)  # already used: releases nothing else
    assert admission.loads["piper"].backlog_chars == 10 + 20
    admission.release(b)
    assert admission.loads["piper"].backlog_chars == 10


def test_zero_max_wait_admits_everything() -> None:
    admission = Admission(max_wait_s=0.0, min_inflight=1, clock=Clock())
    for i in range(100):
        admission.admit("piper", f"r{i}", 100)


class _Engine:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.closed = 0

    async def _chunks(self) -> AsyncIterator[str]:
        try:
            yield "a"
            if self.fail:
                raise RuntimeError("engine failed")
            yield "b"
        finally:
            self.closed += 1

    def stream_piper(self, text: str, *, speed: float = 1.0, request_id: str = "", share: object = None
                     ) -> AsyncIterator[str]:
        return self._chunks()


async def test_metered_engine_counts_streams_and_closes_them() -> None:
    clock = Clock()
    admission = Admission(max_wait_s=1.0, min_inflight=1, clock=clock)
    inner = _Engine()
    port = admission.engine(inner)  # type: ignore[arg-type]
    ticket = admission.admit("piper", "r", 12)
    stream = port.stream_piper("hello world.", request_id="r")
    assert await stream.__anext__() == "a"
    load = admission.loads["piper"]
    assert (load.inflight, load.inflight_chars, load.waiting) == (1, 12, 0)
    await stream.aclose()  # left early: the cancel
    assert (load.inflight, load.inflight_chars, inner.closed) == (0, 0, 1)
    admission.release(ticket)
    assert load.backlog_chars == 0

    failing = admission.engine(_Engine(fail=True))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        async for _ in failing.stream_piper("x" * 30, request_id="f"):
            pass
    assert (load.inflight, load.inflight_chars) == (0, 0)
