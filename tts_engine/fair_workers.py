"""A fixed pool of worker threads that takes waiting tasks in weighted fair order by tenant.

Piper's model instance synthesises `workers` requests at once; the rest wait here, in a
`FairQueue`, instead of a thread pool's FIFO: a tenant with one request waiting goes ahead of a
tenant with a backlog, and tenants with different weights share the workers in proportion to them.
A worker never idles while anything waits (the queue is work-conserving).

The express lane (`express` > 0): fair order decides who starts next, not who gets the cores once
started: a quiet tenant's one request would otherwise wait for a worker to come free and then share
the cores with the flood's requests on the other workers. So the pool also has `express` threads
that take only a request of a tenant well within its share: nothing else of it waiting or running
here, and, in the fair queue's virtual time, away since its last request for at least twice this
request's service at its weight (so it used at most a third of its share meanwhile; a new tenant
qualifies). The regular workers run at a lower CPU priority (their nice raised by
`background_nice`). A quiet request then starts at once, on a thread the kernel prefers, while the
regular workers still use every cycle it leaves (the CPU stays work-conserving). A flooding tenant
always has a backlog, and a low-weight tenant that admission keeps to a short one comes back at
about its share, so neither can use the lane to pass its weight. Priorities need the work to run
on the worker threads themselves (Piper's sessions run each inference on the calling thread,
tts_engine/piper/session.py). Where the nice value cannot be raised the pool logs it once and runs
with equal priorities.

Tasks are handed to idle threads under the pool's lock (`_dispatch`), express threads first, so
which thread runs a task does not depend on which thread the scheduler wakes first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tts_contract.fairness import Share
from tts_engine.fair_queue import FairQueue, Ticket

Task = Callable[[], None]
WaitObserver = Callable[[Share, float], None]  # (share, seconds waited) as a task starts

_LOG = logging.getLogger(__name__)
MAX_NICE = 19
# The express lane takes a tenant away from the queue for at least this many times its request's virtual
# service since its last one: a tenant using at most a third of its share (FairQueue.well_within_share).
EXPRESS_MARGIN = 2.0


@dataclass(eq=False)
class _Waiting:
    task: Task
    withdrawn: Task | None
    share: Share
    key: str
    queued_at: float


class _Slot:
    """One worker thread's mailbox: `_dispatch` puts a task in it, the thread takes it out."""

    def __init__(self, lock: threading.Lock, express: bool):
        self.express = express
        self.ready = threading.Condition(lock)
        self.task: _Waiting | None = None


class FairWorkers:
    """`workers` threads running submitted tasks, fairest first; `cancel(key)` withdraws a waiting one.

    `express` more threads take only tasks of tenants within their share (module doc); the
    `workers` threads run at nice + `background_nice` (module doc)."""

    def __init__(self, workers: int, name: str = "fair-worker", on_wait: WaitObserver | None = None,
                 express: int = 0, background_nice: int = 0):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if express < 0 or background_nice < 0:
            raise ValueError("express and background_nice must be >= 0")
        self._queue: FairQueue[_Waiting] = FairQueue()
        self._by_key: dict[str, Ticket[_Waiting]] = {}
        self._running: Counter[str] = Counter()  # tasks running per tenant
        self._lock = threading.Lock()
        self._closing = False
        self._on_wait = on_wait
        self._background_nice = background_nice
        self._idle: list[_Slot] = []  # slots of threads waiting for a task
        self.express_runs = 0  # tasks the express lane has taken (tests, benchmarks)
        self.priority_lowered = 0  # regular threads whose nice value was raised
        self.priority_refused = False  # the system refused to raise one
        slots = [_Slot(self._lock, False) for _ in range(workers)] + [_Slot(self._lock, True) for _ in range(express)]
        self._threads = [threading.Thread(target=self._run, args=(slot,), daemon=True,
                                          name=f"{name}-{'express-' if slot.express else ''}{i}")
                         for i, slot in enumerate(slots)]
        self._idle.extend(slots)
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
            self._dispatch()

    def cancel(self, key: str) -> bool:
        """Withdraw the waiting task submitted with `key`; False when none waits (running, done or unknown)."""
        with self._lock:
            ticket = self._by_key.pop(key, None) if key else None
            if ticket is None or not self._queue.remove(ticket):
                return False
        if ticket.item.withdrawn is not None:
            ticket.item.withdrawn()
        return True

    def _within_share(self, tenant: str, waiting: int) -> bool:
        # One request, nothing running, and away long enough in the fair queue's virtual time: a low-weight
        # tenant that admission keeps to a short backlog at its share cannot use the lane to pass its weight.
        return waiting == 1 and not self._running[tenant] and self._queue.well_within_share(tenant, EXPRESS_MARGIN)

    def _dispatch(self) -> None:
        """Hand waiting tasks to idle threads (under the lock): an express thread takes the fairest task
        of a tenant within its share, a regular one the fairest task of all."""
        while self._queue and self._idle:
            express = next((slot for slot in self._idle if slot.express), None)
            ticket = None
            if express is not None:
                with contextlib.suppress(IndexError):  # nobody within its share waits
                    ticket = self._queue.pop_ticket(self._within_share)
            if ticket is not None:
                slot = express
                self.express_runs += 1
            else:
                slot = next((s for s in self._idle if not s.express), None)
                if slot is None:
                    return  # only express threads idle and nobody within its share waits
                ticket = self._queue.pop_ticket()
            assert slot is not None
            waiting = ticket.item
            if waiting.key and self._by_key.get(waiting.key) is ticket:
                del self._by_key[waiting.key]  # only this task's entry: a reused key's newer task keeps its own
            self._running[waiting.share.tenant] += 1
            self._idle.remove(slot)
            slot.task = waiting
            slot.ready.notify()

    def _lower_priority(self) -> None:
        """Raise this thread's nice value by `background_nice` (Linux: per thread); logs once if refused."""
        try:
            tid = threading.get_native_id()
            nice = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICE, nice + self._background_nice))
        except (AttributeError, OSError) as error:  # not Linux, or a sandbox that forbids it
            with self._lock:
                first, self.priority_refused = not self.priority_refused, True
            if first:
                _LOG.warning("fair workers: cannot lower the regular workers' CPU priority (%s); "
                             "the express lane runs at the same priority", type(error).__name__)
            return
        with self._lock:
            self.priority_lowered += 1

    def _run(self, slot: _Slot) -> None:
        if self._background_nice and not slot.express:
            self._lower_priority()
        while True:
            with self._lock:
                while slot.task is None and not self._closing:
                    slot.ready.wait()
                waiting, slot.task = slot.task, None
                if waiting is None:  # closing, and nothing handed to this thread
                    if slot in self._idle:
                        self._idle.remove(slot)
                    return
            try:
                if self._on_wait is not None:
                    self._on_wait(waiting.share, time.monotonic() - waiting.queued_at)
                waiting.task()  # the task handles its own errors (DecoupledModel.relay ends its request)
            finally:
                with self._lock:
                    self._running[waiting.share.tenant] -= 1
                    if not self._running[waiting.share.tenant]:
                        del self._running[waiting.share.tenant]
                    self._idle.append(slot)
                    self._dispatch()

    def shutdown(self, timeout: float | None = None) -> None:
        """Finish what waits and what runs, then stop the threads."""
        with self._lock:
            self._closing = True
            for thread_slot in self._idle:
                thread_slot.ready.notify()
        for thread in self._threads:
            thread.join(timeout)
