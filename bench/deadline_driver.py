"""Concurrent clients that stop at a deadline: what a time-boxed run (the GPU check) drives its sides with.

Like `bench.driver.run_concurrent`, but no client starts a request after the deadline, a stream
still running then is closed (the engine frees its row; the reference releases its lock), and a
request still queued for the reference's lock when its turn comes after the deadline returns at
once. Closed requests are marked `cut`: their delivered audio still counts towards throughput.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.driver import Side, run_pool
from bench.metrics import RequestRecord
from bench.workload import BenchRequest

if TYPE_CHECKING:  # torch and the model: imported by whoever builds one, not by this module
    from bench.reference import ReferenceServer


class DeadlinePassed(Exception):
    """Raised by a side when a request's turn comes after the deadline."""


@dataclass
class TimedRecord:
    record: RequestRecord
    cut: bool = False  # closed at the deadline before its end (or never started)


class QueuedReference:
    """The reference behind its lock, with a deadline checked when each request's turn at the lock comes.

    The server's lock becomes re-entrant so that this wrapper can take it first (the request's place
    in the queue) and the server's own `stream` can take it again in the same thread.
    """

    name = "reference"

    def __init__(self, reference: ReferenceServer) -> None:
        self.reference = reference
        reference.lock = threading.RLock()  # type: ignore[assignment]
        self.deadline = float("inf")

    def stream(self, request: BenchRequest, on_tokens: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        with self.reference.lock:
            if time.perf_counter() > self.deadline:
                raise DeadlinePassed
            yield from self.reference.stream(request, on_tokens)


def run_one_until(side: Side, request: BenchRequest, deadline: float) -> TimedRecord:
    counted = [0]

    def on_tokens(n: int) -> None:
        counted[0] += n

    record = RequestRecord(request.index, request.tokens, time.perf_counter())
    timed = TimedRecord(record)
    if record.submitted > deadline:
        timed.cut = True
        return timed
    stream = side.stream(request, on_tokens)
    try:
        for chunk in stream:
            now = time.perf_counter()
            if chunk.size:
                if record.first_audio is None:
                    record.first_audio = now
                record.samples += int(chunk.shape[-1])
                record.chunks += 1
                record.chunk_arrivals.append((now, record.samples))
            if now > deadline:
                timed.cut = True
                break
        else:
            record.finished = time.perf_counter()
    except DeadlinePassed:
        timed.cut = True
    except Exception as exc:  # noqa: BLE001 - one failed request is recorded, the run goes on
        record.error = f"{type(exc).__name__}: {exc}"
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    record.tokens_generated = counted[0] if counted[0] else None
    return timed


def run_until(
    side: Side, requests: list[BenchRequest], concurrency: int, deadline: float
) -> tuple[list[TimedRecord], float]:
    """Stream `requests` with `concurrency` client threads until done or `deadline` (perf_counter seconds).

    Returns the records in request order and the wall time, which ends at the last client's return.
    """
    if isinstance(side, QueuedReference):
        side.deadline = deadline
    return run_pool(requests, concurrency, lambda request: run_one_until(side, request, deadline), "gpu-check-client")
