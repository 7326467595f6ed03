"""A side whose speed the test sets (no model): what the GPU check's phase tests stream from."""

from __future__ import annotations

import threading
import time

import numpy as np

from bench.driver import expected_samples
from bench.workload import SAMPLE_RATE

TOKENS = 22  # 24,320 samples, just over 1 s of audio


class PacedSide:
    """Streams silence in 0.1 s chunks; each chunk takes 0.1 s x (streams active now) / capacity to make.

    Its real-time factor is about (concurrent streams) / capacity, with time.sleep doing the work.
    """

    name = "engine"

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.active = 0
        self.closed = 0
        self.tokens = 0
        self.lock = threading.Lock()

    def stream(self, request, on_tokens=None):
        total, step = expected_samples(request.tokens), SAMPLE_RATE // 10
        with self.lock:
            self.active += 1
        try:
            sent = 0
            while sent < total:
                n = min(step, total - sent)
                time.sleep(n / SAMPLE_RATE * self.active / self.capacity)
                sent += n
                yield np.zeros(n, dtype=np.float32)
            with self.lock:
                self.tokens += request.tokens
        finally:
            with self.lock:
                self.active -= 1
                self.closed += 1

    def stats_snapshot(self) -> dict[str, float]:
        return {"steps": 1.0 + self.tokens, "tokens": float(self.tokens)}
