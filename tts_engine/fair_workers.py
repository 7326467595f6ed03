"""A fixed pool of worker threads that takes waiting tasks in weighted fair order by tenant.

Piper's model instance synthesises `workers` requests at once; the rest wait here, in a
`FairQueue`, instead of a thread pool's FIFO: a tenant with one request waiting goes ahead of a
tenant with a backlog, and tenants with different weights share the workers in proportion to them.
A worker never idles while anything waits (the queue is work-conserving).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tts_contract.fairness import Share
from tts_engine.fair_queue import FairQueue, Ticket

Task = Callable[[], None]
WaitObserver = Callable[[Share, float], None]  # (share, seconds waited) as a task starts


@dataclass(eq=False)
class _Waiting:
    task: Task
    withdrawn: Task | None
    share: Share
    key: str
    queued_at: float


class FairWorkers:
    """`workers` threads running submitted tasks, fairest first; `cancel(key)` withdraws a waiting one."""

    def __init__(self, workers: int, name: str = "fair-worker", on_wait: WaitObserver | None = None):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._queue: FairQueue[_Waiting] = FairQueue()
        self._by_key: dict[str, Ticket[_Waiting]] = {}
        self._lock = threading.Condition()
        self._closing = False
        self._on_wait = on_wait
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def __len__(self) -> int:
        """Tasks waiting for a worker."""
        with self._lock:
            return len(self._queue)

    def submit(self, task: Task, share: Share, cost: float, key: str = "", withdrawn: Task | None = None) -> None:
        """Queue `task`; `key` (a request id; "" for none) lets `cancel` withdraw it while it waits, and
        then `withdrawn()` runs instead of `task()` (on the cancelling thread)."""
        waiting = _Waiting(task, withdrawn, share, key, time.monotonic())
        with self._lock:
            if self._closing:
                raise RuntimeError("the worker pool is shut down")
            ticket = self._queue.push(waiting, share, cost)
            if key:
                self._by_key[key] = ticket
            self._lock.notify()

    def cancel(self, key: str) -> bool:
        """Withdraw the waiting task submitted with `key`; False when none waits (running, done or unknown)."""
        with self._lock:
            ticket = self._by_key.pop(key, None) if key else None
            if ticket is None or not self._queue.remove(ticket):
                return False
        if ticket.item.withdrawn is not None:
            ticket.item.withdrawn()
        return True

    def _next(self) -> _Waiting | None:
        with self._lock:
            while not self._queue and not self._closing:
                self._lock.wait()
            if not self._queue:
                return None  # closing and nothing left
            waiting = self._queue.pop()
            if waiting.key and (ticket := self._by_key.get(waiting.key)) is not None and not ticket.queued:
                del self._by_key[waiting.key]  # only this task's entry: a reused key's newer task keeps its own
            return waiting

    def _run(self) -> None:
        while (waiting := self._next()) is not None:
            if self._on_wait is not None:
                self._on_wait(waiting.share, time.monotonic() - waiting.queued_at)
            waiting.task()  # the task handles its own errors (DecoupledModel.relay ends its request)

    def shutdown(self, timeout: float | None = None) -> None:
        """Finish what waits and what runs, then stop the threads."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout)
