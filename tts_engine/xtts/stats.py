"""Engine counters and histograms, in a shape a Triton model can export as Prometheus metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
STEP_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass
class Histogram:
    """Cumulative-style histogram: counts per upper bound (le), plus +Inf, sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value
        self.count += 1

    def snapshot(self) -> dict:
        cumulative, running = {}, 0
        for bound, c in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += c
            cumulative[bound] = running
        return {"buckets": cumulative, "sum": self.total, "count": self.count}


class EngineStats:
    """Thread-safe engine metrics; `snapshot()` returns plain numbers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.decode_steps = 0
        self.tokens_generated = 0
        self.requests_submitted = 0
        self.requests_completed = 0
        self.requests_failed = 0
        self.requests_cancelled = 0
        self.rejected = 0
        self.active_requests = 0
        self.queued_requests = 0
        self.audio_seconds = 0.0
        self.busy_seconds = 0.0
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.vocode_batch_size = Histogram(BATCH_BUCKETS)  # windows per HiFi-GAN call of the vocoder thread(s)
        self.step_seconds = Histogram(STEP_BUCKETS)
        self.time_to_first_chunk = Histogram(LATENCY_BUCKETS)
        self._recent: list[tuple[float, int]] = []  # (time, tokens) of recent steps for tokens/s
        # Live (active, queued) counts, read at snapshot time; the engine installs it.
        self.gauges: Callable[[], tuple[int, int]] | None = None
        # Voice prefix cache (hits, misses), read at snapshot time; the engine installs it.
        self.prefix_cache: Callable[[], tuple[int, int]] | None = None

    def record_step(self, batch: int, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.decode_steps += 1
            self.tokens_generated += batch
            self.busy_seconds += seconds
            self.batch_size.observe(batch)
            self.step_seconds.observe(seconds)
            self._recent.append((now, batch))
            if len(self._recent) > 4096:
                del self._recent[:2048]

    def record_vocode_batch(self, windows: int) -> None:
        with self._lock:
            self.vocode_batch_size.observe(windows)

    def tokens_per_second(self, window: float = 10.0) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [(t, n) for t, n in self._recent if now - t <= window]
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 1e-3)
        return sum(n for _, n in recent) / span

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def observe_first_chunk(self, seconds: float) -> None:
        with self._lock:
            self.time_to_first_chunk.observe(seconds)

    def snapshot(self) -> dict:
        tps = self.tokens_per_second()
        if self.gauges is not None:
            self.active_requests, self.queued_requests = self.gauges()
        hits, misses = self.prefix_cache() if self.prefix_cache is not None else (0, 0)
        with self._lock:
            return {
                "decode_steps": self.decode_steps,
                "tokens_generated": self.tokens_generated,
                "tokens_per_second": tps,
                "requests_submitted": self.requests_submitted,
                "requests_completed": self.requests_completed,
                "requests_failed": self.requests_failed,
                "requests_cancelled": self.requests_cancelled,
                "requests_rejected": self.rejected,
                "active_requests": self.active_requests,
                "queued_requests": self.queued_requests,
                "audio_seconds": self.audio_seconds,
                "busy_seconds": self.busy_seconds,
                "prefix_cache_hits": hits,
                "prefix_cache_misses": misses,
                "batch_size": self.batch_size.snapshot(),
                "vocode_batch_size": self.vocode_batch_size.snapshot(),
                "step_seconds": self.step_seconds.snapshot(),
                "time_to_first_chunk_seconds": self.time_to_first_chunk.snapshot(),
            }
