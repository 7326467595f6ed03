"""Piper's worker pool (tts_engine.fair_workers): fair order among waiting tasks, withdrawal, wait reports."""

from __future__ import annotations

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
