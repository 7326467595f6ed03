"""The GPU check's rules on sides whose speed is set by the test (no model): where the real-time search
stops, and what a deadline does to running and queued streams."""

from __future__ import annotations

import threading
import time

import numpy as np

from bench.deadline_driver import QueuedReference, run_until
from bench.driver import expected_samples
from bench.gpu_stage import phase_realtime
from bench.workload import SAMPLE_RATE, make_requests
from tests.bench.paced_side import TOKENS, PacedSide


def test_search_stops_at_the_first_level_with_a_stream_at_rtf_one_or_more():
    side = PacedSide(capacity=3.0)  # RTF about 1/3, 2/3, 4/3 at 1, 2, 4 streams
    result = phase_realtime(side, [1, 2, 4, 8], TOKENS, time.perf_counter() + 60)  # type: ignore[arg-type]
    rows = result["levels"]
    assert [r["concurrency"] for r in rows] == [1, 2, 4]  # 8 is never run
    assert [r["realtime"] for r in rows] == [True, True, False]
    assert rows[1]["rtf_max"] < 1.0 <= rows[2]["rtf_max"]
    assert result["max_realtime_concurrency"] == 2 and result["outcome"] == "failed at concurrency 4"
    assert result["problems"] == [] and result["status"] == "done"


def test_search_that_passes_every_level_says_so():
    result = phase_realtime(PacedSide(capacity=50.0), [1, 2], TOKENS, time.perf_counter() + 60)  # type: ignore[arg-type]
    assert result["max_realtime_concurrency"] == 2 and result["outcome"] == "all levels passed"


def test_deadline_closes_running_streams_and_starts_no_more():
    side = PacedSide(capacity=1.0)  # two streams at once: each takes about 2 s
    timed, wall = run_until(side, make_requests(4, TOKENS), 2, time.perf_counter() + 0.5)
    assert [t.cut for t in timed] == [True] * 4
    started, never = timed[:2], timed[2:]
    assert all(0 < t.record.samples < expected_samples(TOKENS) and t.record.finished is None for t in started)
    assert all(t.record.samples == 0 and t.record.first_audio is None for t in never)
    assert side.active == 0 and side.closed == 2  # the running streams were closed, not left behind
    assert wall < 2.0


class _SerialReference:
    """What QueuedReference wraps: a lock held for a whole stream."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.served = 0

    def stream(self, request, on_tokens=None):
        with self.lock:
            self.served += 1
            for _ in range(5):
                time.sleep(0.1)
                yield np.zeros(SAMPLE_RATE // 10, dtype=np.float32)


def test_queued_reference_requests_whose_turn_comes_after_the_deadline_return_at_once():
    reference = _SerialReference()
    side = QueuedReference(reference)  # type: ignore[arg-type]
    timed, _ = run_until(side, make_requests(3, TOKENS), 3, time.perf_counter() + 0.25)
    assert reference.served == 1  # the queued two never ran
    assert sum(1 for t in timed if t.record.samples > 0) == 1
    assert all(t.cut and t.record.error is None for t in timed)
