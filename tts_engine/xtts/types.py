"""Public value types of the XTTS engine: request parameters and streamed audio chunks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tts_contract.audio import XTTS_SAMPLE_RATE
from tts_contract.limits import XTTS_SPEED_RANGE

SAMPLE_RATE = XTTS_SAMPLE_RATE


class EngineError(RuntimeError):
    """A request could not be completed (engine stopped, decode failure, vocoder failure)."""


@dataclass(frozen=True)
class SynthesisParams:
    """Per-request generation settings (defaults are XTTS-v2's released inference defaults).

    `max_new_tokens` bounds the audio tokens of each sentence; it is capped by the model's own limit.
    `first_chunk_tokens` / `chunk_tokens` say after how many new audio tokens a chunk is vocoded.
    """

    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 10.0
    length_penalty: float = 1.0  # beam search only in the reference; accepted and ignored (no beams here)
    do_sample: bool = True
    speed: float = 1.0
    seed: int | None = None
    max_new_tokens: int | None = None
    first_chunk_tokens: int = 8
    chunk_tokens: int = 24

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""

        def finite(name: str, value: float) -> None:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")

        for name in ("temperature", "top_p", "repetition_penalty", "length_penalty", "speed"):
            finite(name, getattr(self, name))
        if not 0.01 <= self.temperature <= 10.0:
            raise ValueError(f"temperature must be in [0.01, 10], got {self.temperature}")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 disables it), got {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 < self.repetition_penalty <= 100.0:
            raise ValueError(f"repetition_penalty must be in (0, 100], got {self.repetition_penalty}")
        low, high = XTTS_SPEED_RANGE
        if not low <= self.speed <= high:
            raise ValueError(f"speed must be in [{low:g}, {high:g}], got {self.speed}")
        if not isinstance(self.do_sample, bool):
            raise ValueError(f"do_sample must be a bool, got {self.do_sample!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {self.seed!r}")
        if self.max_new_tokens is not None and (
            not isinstance(self.max_new_tokens, int) or isinstance(self.max_new_tokens, bool) or self.max_new_tokens < 1
        ):
            raise ValueError(f"max_new_tokens must be a positive integer or None, got {self.max_new_tokens!r}")
        for name in ("first_chunk_tokens", "chunk_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
                raise ValueError(f"{name} must be an integer in [1, 1000], got {value!r}")


@dataclass(frozen=True)
class AudioChunk:
    """A piece of a request's audio: mono float32 at 24 kHz; `is_last` marks the request's final chunk."""

    audio: np.ndarray
    index: int
    is_last: bool
    sample_rate: int = SAMPLE_RATE
