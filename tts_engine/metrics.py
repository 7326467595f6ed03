"""Custom Prometheus metrics the Triton models export beside Triton's own (:8002/metrics).

`pb_utils` exists only inside the Python stub, so it is handed in rather than imported. Names:

- tts_model_info{model, model_version, test_weights} 1: what is loaded (read by the control plane)
- tts_active_streams{model}: requests being generated now
- tts_requests_total{model, outcome}: finished requests by outcome (ok, error, cancelled)
- tts_audio_seconds_total{model}: audio produced
- tts_time_to_first_chunk_seconds{model}: histogram, request arrival to first audio chunk sent
- tts_decode_batch_size{model}: histogram of rows per XTTS decode step
- tts_tokens_generated_total{model}: XTTS audio tokens decoded
- tts_tokens_per_second{model}: XTTS decode throughput over the last stats interval
"""

from __future__ import annotations

from typing import Any

FIRST_CHUNK_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]
BATCH_BUCKETS = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64]
OUTCOMES = ("ok", "error", "cancelled")


class ModelMetrics:
    """The metric objects of one model instance (all instances of a model share the families)."""

    def __init__(self, pb_utils: Any, model: str, model_version: str, test_weights: bool):
        family = pb_utils.MetricFamily
        self._model = model
        labels = {"model": model}
        self._families = []  # kept alive as long as their metrics: the stub requires that order

        def make(name: str, description: str, kind: Any, extra: dict[str, str] | None = None, **kwargs: Any):
            fam = family(name=name, description=description, kind=kind)
            self._families.append(fam)
            return fam.Metric(labels={**labels, **(extra or {})}, **kwargs)

        info_labels = {"model_version": model_version, "test_weights": str(bool(test_weights)).lower()}
        self.info = make("tts_model_info", "Loaded model; the labels carry version and test-weight flag",
                         family.GAUGE, info_labels)
        self.info.set(1)
        self.active_streams = make("tts_active_streams", "Requests being generated now", family.GAUGE)
        requests = family(name="tts_requests_total", description="Finished requests by outcome",
                                         kind=family.COUNTER)
        self._families.append(requests)
        self.requests = {outcome: requests.Metric(labels={**labels, "outcome": outcome}) for outcome in OUTCOMES}
        self.audio_seconds = make("tts_audio_seconds_total", "Seconds of audio produced", family.COUNTER)
        self.first_chunk = make("tts_time_to_first_chunk_seconds", "Request arrival to first audio chunk sent",
                                family.HISTOGRAM, buckets=FIRST_CHUNK_BUCKETS)
        self._decode_batch = None
        self._tokens = None
        self._tokens_per_second = None
        self._family = family

    def enable_decode_metrics(self) -> None:
        """The XTTS decode loop's metrics (piper has no decode loop)."""
        family = self._family
        labels = {"model": self.model_label}
        for name, description, kind, kwargs, attr in (
            ("tts_decode_batch_size", "Rows per XTTS decode step", family.HISTOGRAM, {"buckets": BATCH_BUCKETS},
             "_decode_batch"),
            ("tts_tokens_generated_total", "XTTS audio tokens decoded", family.COUNTER, {}, "_tokens"),
            ("tts_tokens_per_second", "XTTS decode throughput over the last interval", family.GAUGE, {},
             "_tokens_per_second"),
        ):
            fam = family(name=name, description=description, kind=kind)
            self._families.append(fam)
            setattr(self, attr, fam.Metric(labels=labels, **kwargs))

    @property
    def model_label(self) -> str:
        return self._model

    def observe_decode(self, batch_sizes: list[int], tokens: int, tokens_per_second: float | None) -> None:
        if self._decode_batch is None:
            return
        for size in batch_sizes:
            self._decode_batch.observe(size)
        if tokens:
            self._tokens.increment(tokens)
        if tokens_per_second is not None:
            self._tokens_per_second.set(tokens_per_second)

    def finished(self, outcome: str) -> None:
        self.requests[outcome].increment(1)
