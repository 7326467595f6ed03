"""Piper's worker pool (tts_engine.fair_workers): fair order among waiting tasks, withdrawal, wait reports."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from tts_contract.fairness import Share
from tts_engine.fair_workers import FairWorkers

TIMEOUT_S = 30.0


def test_waiting_tasks_run_in_fair_order_and_a_withdrawn_one_never_runs() -> None:
    ran: list[str] = []
    withdrawn: list[str] = []
    waits: list[tuple[str, float]] = []
    gate, started, done = threading.Event(), threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        assert gate.wait(TIMEOUT_S)

    workers = FairWorkers(1, on_wait=lambda share, seconds: waits.append((share.tenant, seconds)))
    try:
        workers.submit(block, Share("warm"), cost=1)
        assert started.wait(TIMEOUT_S)  # the only worker is busy: everything below waits
        for i in range(4):
            workers.submit(lambda i=i: ran.append(f"a{i}"), Share("a"), cost=10, key=f"a{i}",
                           withdrawn=lambda i=i: withdrawn.append(f"a{i}"))
        workers.submit(lambda: ran.append("b0"), Share("b"), cost=10, key="b0")
        workers.submit(done.set, Share("c"), cost=1000)
        assert len(workers) == 6
        assert workers.cancel("a2") and not workers.cancel("a2") and not workers.cancel("unknown")
        assert withdrawn == ["a2"]
        gate.set()
        assert done.wait(TIMEOUT_S)
    finally:
        workers.shutdown(TIMEOUT_S)
    assert ran == ["a0", "b0", "a1", "a3"]  # B's one request goes ahead of A's backlog; a2 was withdrawn
    assert [tenant for tenant, _ in waits] == ["warm", "a", "b", "a", "a", "c"]
    assert all(seconds >= 0 for _, seconds in waits)


def test_every_worker_is_used_and_shutdown_finishes_what_waits() -> None:
    barrier = threading.Barrier(3, timeout=TIMEOUT_S)
    count = []
    workers = FairWorkers(3)
    for _ in range(3):
        workers.submit(barrier.wait, Share("a"), cost=1)  # passes only if three run at once
    for _ in range(5):
        workers.submit(lambda: count.append(1), Share("b"), cost=1)
    workers.shutdown(TIMEOUT_S)
    assert len(count) == 5 and not barrier.broken
    with pytest.raises(RuntimeError):
        workers.submit(lambda: None, Share("a"), cost=1)


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        FairWorkers(0)



def _lane() -> str:
    return "express" if "express" in threading.current_thread().name else "regular"


def test_the_express_lane_takes_a_quiet_tenants_request_and_never_a_backlogged_tenants() -> None:
    first_gate, flood_gate = threading.Event(), threading.Event()
    started = {name: threading.Event() for name in ("x1", "x2", "quiet")}
    lanes: dict[str, str] = {}
    waiting_when_quiet_ran: list[int] = []

    def blocked(name: str, gate: threading.Event) -> None:
        lanes.setdefault(name, _lane())
        if name in started:
            started[name].set()
        assert gate.wait(TIMEOUT_S)

    workers = FairWorkers(1, express=1)
    try:
        workers.submit(lambda: blocked("x1", first_gate), Share("x"), cost=1)  # x's only request: express
        assert started["x1"].wait(TIMEOUT_S)
        workers.submit(lambda: blocked("x2", flood_gate), Share("x"), cost=1)  # x has one running: regular
        assert started["x2"].wait(TIMEOUT_S)
        for i in range(3):  # two flooding tenants with backlogs, weights 3 and 1
            workers.submit(lambda i=i: blocked(f"gold{i}", flood_gate), Share("gold", 3.0), cost=30)
            workers.submit(lambda i=i: blocked(f"silver{i}", flood_gate), Share("silver", 1.0), cost=30)
        assert len(workers) == 6
        first_gate.set()  # the express thread comes free; neither backlogged tenant may take it

        def quiet() -> None:
            lanes["quiet"] = _lane()
            waiting_when_quiet_ran.append(len(workers))
            started["quiet"].set()

        # The regular worker is held (x2) and so would be the express thread had it taken a flood
        # request: the quiet one runs only if the express lane stayed free for it.
        workers.submit(quiet, Share("quiet"), cost=1)
        assert started["quiet"].wait(TIMEOUT_S)
        assert waiting_when_quiet_ran == [6]
        flood_gate.set()
    finally:
        first_gate.set()
        flood_gate.set()
        workers.shutdown(TIMEOUT_S)
    assert len(workers) == 0 and len(lanes) == 9
    assert (lanes["x1"], lanes["x2"], lanes["quiet"]) == ("express", "regular", "express")


def test_regular_workers_run_at_a_higher_nice_value_than_the_express_lane() -> None:
    gate = threading.Event()
    both = threading.Barrier(3, timeout=TIMEOUT_S)
    nice: dict[str, int] = {}

    def record() -> None:
        nice[_lane()] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        both.wait()
        assert gate.wait(TIMEOUT_S)

    base = os.getpriority(os.PRIO_PROCESS, 0)
    workers = FairWorkers(1, express=1, background_nice=5)
    try:
        workers.submit(record, Share("a"), cost=1)  # the express thread
        workers.submit(record, Share("a"), cost=1)  # the regular one
        both.wait()
    finally:
        gate.set()
        workers.shutdown(TIMEOUT_S)
    if workers.priority_refused:
        pytest.skip("this system refuses to raise a thread's nice value (covered by the next test)")
    assert nice == {"express": base, "regular": min(19, base + 5)}
    assert workers.priority_lowered == 1


def test_without_permission_to_change_priorities_the_pool_logs_once_and_serves(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError("not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    barrier = threading.Barrier(3, timeout=TIMEOUT_S)
    with caplog.at_level(logging.WARNING, logger="tts_engine.fair_workers"):
        workers = FairWorkers(3, background_nice=10)
        for _ in range(3):
            workers.submit(barrier.wait, Share("a"), cost=1)  # passes only once every regular thread runs
        workers.shutdown(TIMEOUT_S)
    assert not barrier.broken and workers.priority_refused and workers.priority_lowered == 0
    assert sum("CPU priority" in record.getMessage() for record in caplog.records) == 1


def test_a_tenant_served_past_its_share_waits_for_a_regular_worker() -> None:
    x1_gate, x2_gate = threading.Event(), threading.Event()
    x_started = threading.Event()
    s1_done, s2_done = threading.Event(), threading.Event()
    lanes: dict[str, str] = {}

    def x(gate: threading.Event) -> None:
        x_started.set()
        assert gate.wait(TIMEOUT_S)

    def s(name: str, done: threading.Event) -> None:
        lanes[name] = _lane()
        done.set()

    workers = FairWorkers(1, express=1)
    try:
        workers.submit(lambda: x(x1_gate), Share("x"), cost=1)  # express
        assert x_started.wait(TIMEOUT_S)
        x_started.clear()
        workers.submit(lambda: x(x2_gate), Share("x"), cost=1)  # regular
        assert x_started.wait(TIMEOUT_S)
        workers.submit(lambda: s("s1", s1_done), Share("s"), cost=100)  # waits; s is due (not ahead of V)
        x1_gate.set()
        assert s1_done.wait(TIMEOUT_S)  # on the express thread, as soon as it came free
        # s is back at once: nobody else was served in virtual time since, so it is not well within its share.
        workers.submit(lambda: s("s2", s2_done), Share("s"), cost=100)
        x2_gate.set()
        assert s2_done.wait(TIMEOUT_S)
    finally:
        x1_gate.set()
        x2_gate.set()
        workers.shutdown(TIMEOUT_S)
    assert lanes == {"s1": "express", "s2": "regular"}
