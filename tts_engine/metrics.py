"""Custom Prometheus metrics the Triton models export beside Triton's own nv_* metrics (:8002/metrics).

`pb_utils` exists only inside the Python stub, so it is handed in rather than imported. Every
metric carries a `model` label. Shared by all models:

- tts_model_info{model, model_version, test_weights} 1: what is loaded (the control plane reads it)
- tts_model_active_requests: requests being streamed by the model now
- tts_requests_total{outcome}: finished requests by outcome (ok, error, cancelled)
- tts_audio_seconds_total: audio sent
- tts_<model>_time_to_first_chunk_seconds: histogram, request arrival to first chunk sent
- tts_engine_queue_wait_seconds{weight}: histogram, time a request waited in the model's fair queue
  (Piper's workers, XTTS's wait for a decode row) by its share's weight class; `weight` is the
  weight to two significant digits for the first MAX_WEIGHT_CLASSES weights seen, then "other"
  (tenants are not labels: their number is unbounded)

XTTS adds its decode loop, copied from the engine's EngineStats once a second (`EngineStatsExporter`)
rather than per step, so the decode loop never waits on the stub's metric IPC:

- tts_xtts_decode_steps_total, tts_xtts_tokens_generated_total: rate(tokens)/rate(steps) is the
  exact mean decode batch size
- tts_xtts_decode_batch_size: histogram of rows per decode step (bucket counts exact; each step
  is recorded at its bucket's upper bound, so _sum is an upper bound)
- tts_xtts_vocode_batch_size: histogram of windows per HiFi-GAN call of the vocoder thread(s)
  (XTTS_VOCODE_BATCH caps it; recorded like the decode batch size)
- tts_xtts_tokens_per_second: decode throughput over the engine's recent window
- tts_xtts_engine_requests{state="running|queued"}: requests in decode rows / waiting for a row
- tts_xtts_prefix_cache_total{result="hit|miss"}: prefills that reused a voice's cached prefix
"""

from __future__ import annotations

import math
from typing import Any

FIRST_CHUNK_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]
QUEUE_WAIT_BUCKETS = [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
OUTCOMES = ("ok", "error", "cancelled")
MAX_WEIGHT_CLASSES = 8


class WeightClasses:
    """Label values for share weights, bounded: the first `limit` distinct weights, then "other"."""

    def __init__(self, limit: int = MAX_WEIGHT_CLASSES):
        self._limit = limit
        self._seen: set[str] = set()

    def label(self, weight: float) -> str:
        value = f"{float(f'{weight:.2g}'):g}"  # 3 -> "3", 0.3333 -> "0.33", 12.5 -> "12"
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        return "other"


class ModelMetrics:
    """The metric objects of one model instance; instances of one model share the families."""

    def __init__(self, pb_utils: Any, model: str, model_version: str, test_weights: bool):
        self._kinds = pb_utils.MetricFamily
        self.model = model
        self._families: list[Any] = []  # must outlive their metrics (the stub enforces that order)
        info = self._family("tts_model_info", "Loaded model; labels carry its version and test-weight flag", "GAUGE")
        self.info = info.Metric(labels={"model": model, "model_version": model_version,
                                        "test_weights": str(bool(test_weights)).lower()})
        self.info.set(1)
        self.active = self._metric("tts_model_active_requests", "Requests the model is streaming now", "GAUGE")
        requests = self._family("tts_requests_total", "Finished requests by outcome", "COUNTER")
        self.requests = {outcome: requests.Metric(labels={"model": model, "outcome": outcome}) for outcome in OUTCOMES}
        self.audio_seconds = self._metric("tts_audio_seconds_total", "Seconds of audio sent", "COUNTER")
        self.first_chunk = self._metric(f"tts_{model}_time_to_first_chunk_seconds",
                                        "Request arrival to first audio chunk sent", "HISTOGRAM",
                                        buckets=FIRST_CHUNK_BUCKETS)
        self._queue_wait_family = self._family("tts_engine_queue_wait_seconds",
                                               "Time a request waited in the model's fair queue, by weight class",
                                               "HISTOGRAM")
        self._queue_wait: dict[str, Any] = {}
        self.weight_classes = WeightClasses()

    def observe_queue_wait(self, weight: float, seconds: float) -> None:
        label = self.weight_classes.label(weight)
        metric = self._queue_wait.get(label)
        if metric is None:
            metric = self._queue_wait[label] = self._queue_wait_family.Metric(
                labels={"model": self.model, "weight": label}, buckets=QUEUE_WAIT_BUCKETS)
        metric.observe(seconds)

    def _family(self, name: str, description: str, kind: str) -> Any:
        family = self._kinds(name=name, description=description, kind=getattr(self._kinds, kind))
        self._families.append(family)
        return family

    def _metric(self, name: str, description: str, kind: str, labels: dict[str, str] | None = None, **kwargs) -> Any:
        return self._family(name, description, kind).Metric(labels={"model": self.model, **(labels or {})}, **kwargs)

    def finished(self, outcome: str) -> None:
        self.requests[outcome].increment(1)


class EngineStatsExporter:
    """Copies an XTTS engine's `EngineStats.snapshot()` into Triton metrics as deltas since the last call."""

    def __init__(self, metrics: ModelMetrics, batch_buckets: list[float]):
        self.steps = metrics._metric("tts_xtts_decode_steps_total", "XTTS decode steps", "COUNTER")
        self.tokens = metrics._metric("tts_xtts_tokens_generated_total", "XTTS audio tokens decoded", "COUNTER")
        self.batch = metrics._metric("tts_xtts_decode_batch_size", "Rows per XTTS decode step", "HISTOGRAM",
                                     buckets=list(batch_buckets))
        self.vocode_batch = metrics._metric("tts_xtts_vocode_batch_size", "Windows per XTTS HiFi-GAN call",
                                            "HISTOGRAM", buckets=list(batch_buckets))
        self.tokens_per_second = metrics._metric("tts_xtts_tokens_per_second",
                                                 "XTTS decode throughput over the recent window", "GAUGE")
        requests = metrics._family("tts_xtts_engine_requests", "XTTS requests by state", "GAUGE")
        self.running = requests.Metric(labels={"model": metrics.model, "state": "running"})
        self.queued = requests.Metric(labels={"model": metrics.model, "state": "queued"})
        prefix = metrics._family("tts_xtts_prefix_cache_total", "XTTS prefills by voice prefix cache result",
                                 "COUNTER")
        self.prefix_hits = prefix.Metric(labels={"model": metrics.model, "result": "hit"})
        self.prefix_misses = prefix.Metric(labels={"model": metrics.model, "result": "miss"})
        self._previous: dict[str, Any] = {"decode_steps": 0, "tokens_generated": 0, "buckets": {}, "vocode_buckets": {},
                                          "prefix_cache_hits": 0, "prefix_cache_misses": 0}

    def update(self, snapshot: dict[str, Any]) -> None:
        previous = self._previous
        steps = snapshot["decode_steps"] - previous["decode_steps"]
        tokens = snapshot["tokens_generated"] - previous["tokens_generated"]
        if steps > 0:
            self.steps.increment(steps)
        if tokens > 0:
            self.tokens.increment(tokens)
        for key, counter in (("prefix_cache_hits", self.prefix_hits), ("prefix_cache_misses", self.prefix_misses)):
            fresh = snapshot.get(key, 0) - previous.get(key, 0)
            if fresh > 0:
                counter.increment(fresh)
        buckets = snapshot["batch_size"]["buckets"]  # cumulative counts keyed by upper bound
        _observe_fresh(self.batch, buckets, previous["buckets"])
        vocode = snapshot.get("vocode_batch_size", {}).get("buckets", {})
        _observe_fresh(self.vocode_batch, vocode, previous.get("vocode_buckets", {}))
        self._previous = {
            "decode_steps": snapshot["decode_steps"],
            "tokens_generated": snapshot["tokens_generated"],
            "buckets": _per_bucket(buckets),
            "vocode_buckets": _per_bucket(vocode),
            "prefix_cache_hits": snapshot.get("prefix_cache_hits", 0),
            "prefix_cache_misses": snapshot.get("prefix_cache_misses", 0),
        }
        self.tokens_per_second.set(float(snapshot["tokens_per_second"]))
        in_flight = snapshot["requests_submitted"] - (
            snapshot["requests_completed"] + snapshot["requests_failed"] + snapshot["requests_cancelled"]
        )
        queued = max(0, min(int(snapshot["queued_requests"]), in_flight))
        self.queued.set(queued)
        self.running.set(max(0, in_flight - queued))


def _observe_fresh(histogram: Any, cumulative: dict[float, int], previous: dict[float, int]) -> None:
    """Observe each count new since `previous` (per-bucket counts) at its bucket's upper bound."""
    below = 0
    for bound, running in cumulative.items():
        in_bucket = running - below
        below = running
        fresh = in_bucket - previous.get(bound, 0)
        value = bound if math.isfinite(bound) else 2 * max(b for b in cumulative if math.isfinite(b))
        for _ in range(max(fresh, 0)):
            histogram.observe(value)


def _per_bucket(cumulative: dict[float, int]) -> dict[float, int]:
    counts, below = {}, 0
    for bound, running in cumulative.items():
        counts[bound] = running - below
        below = running
    return counts


class PendingMetrics:
    """Request-path metric updates, buffered and applied by one thread (`flush`).

    Every metric call in the Python stub is a blocking round trip to the server process; keeping
    them off the streaming threads keeps chunk latency flat and leaves one thread talking to the
    metrics IPC, which Triton 2.51's Python backend handles less reliably under many concurrent callers.
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._active = 0
        self._audio_seconds = 0.0
        self._outcomes: dict[str, int] = {}
        self._first_chunk: list[float] = []
        self._queue_waits: list[tuple[float, float]] = []

    def queue_wait(self, share: Any, seconds: float) -> None:
        """A request left the fair queue after `seconds` (`share`: its tts_contract.fairness.Share)."""
        with self._lock:
            self._queue_waits.append((float(share.weight), seconds))

    def started(self) -> None:
        with self._lock:
            self._active += 1

    def first_chunk(self, seconds: float) -> None:
        with self._lock:
            self._first_chunk.append(seconds)

    def audio(self, seconds: float) -> None:
        with self._lock:
            self._audio_seconds += seconds

    def finished(self, outcome: str, was_active: bool = True) -> None:
        with self._lock:
            self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
            if was_active:
                self._active -= 1

    def flush(self, metrics: ModelMetrics) -> None:
        with self._lock:
            active, self._active = self._active, 0
            audio, self._audio_seconds = self._audio_seconds, 0.0
            outcomes, self._outcomes = self._outcomes, {}
            first, self._first_chunk = self._first_chunk, []
            waits, self._queue_waits = self._queue_waits, []
        for weight, seconds in waits:
            metrics.observe_queue_wait(weight, seconds)
        if active:
            metrics.active.increment(active)
        if audio:
            metrics.audio_seconds.increment(audio)
        for outcome, count in outcomes.items():
            metrics.requests[outcome].increment(count)
        for seconds in first:
            metrics.first_chunk.observe(seconds)
