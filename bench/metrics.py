"""Per-request timings and the summary statistics every stage reports."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.workload import SAMPLE_RATE


@dataclass
class RequestRecord:
    """What one client saw of one request; times are time.perf_counter() seconds."""

    index: int
    tokens_requested: int
    submitted: float
    first_audio: float | None = None
    finished: float | None = None
    samples: int = 0
    chunks: int = 0
    tokens_generated: int | None = None  # when the side can count them
    chunk_arrivals: list[tuple[float, int]] = field(default_factory=list)  # (time, samples so far)
    error: str | None = None

    @property
    def audio_seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def ttfa(self) -> float | None:
        return None if self.first_audio is None else self.first_audio - self.submitted

    @property
    def rtf(self) -> float | None:
        """Wall time of the whole request over the audio it produced (< 1: faster than real time)."""
        if self.finished is None or self.samples == 0:
            return None
        return (self.finished - self.submitted) / self.audio_seconds

    @property
    def stalls(self) -> bool:
        """Whether playback started at the first chunk would run dry before some later chunk arrived."""
        if self.first_audio is None:
            return True
        played_from = self.first_audio
        previous_samples = 0
        for arrived, samples_so_far in self.chunk_arrivals:
            if arrived > played_from + previous_samples / SAMPLE_RATE + 1e-9:
                return True
            previous_samples = samples_so_far
        return False


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), q in [0, 100]; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 2)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summarise(records: list[RequestRecord], wall: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metrics of one (side, concurrency) run."""
    ok = [r for r in records if r.error is None and r.finished is not None]
    ttfas = [r.ttfa for r in ok if r.ttfa is not None]
    rtfs = [r.rtf for r in ok if r.rtf is not None]
    audio = sum(r.audio_seconds for r in ok)
    tokens = sum(r.tokens_requested for r in ok)
    summary = {
        "requests": len(records),
        "errors": len(records) - len(ok),
        "wall_s": _round(wall),
        "ttfa_p50_ms": _ms(percentile(ttfas, 50)),
        "ttfa_p95_ms": _ms(percentile(ttfas, 95)),
        "rtf_p50": _round(percentile(rtfs, 50)),
        "rtf_p95": _round(percentile(rtfs, 95)),
        "streams_without_stall": sum(1 for r in ok if not r.stalls),
        "audio_s": _round(audio),
        "audio_s_per_wall_s": _round(audio / wall if wall > 0 else None),
        "tokens_per_s": _round(tokens / wall if wall > 0 else None, 2),
        "tokens_requested": [r.tokens_requested for r in records],
        "tokens_generated": [r.tokens_generated for r in records],
        "samples": [r.samples for r in records],
    }
    if extra:
        summary.update(extra)
    return summary
