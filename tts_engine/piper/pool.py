"""How Piper's Triton model runs its requests: worker threads, the express lane, priorities, threads per run.

Each comes from the model's config.pbtxt parameter, and an environment variable of Triton's
process overrides it (README, "Read by the Triton-side models"):

| parameter | variable | meaning |
| --- | --- | --- |
| workers_per_instance | PIPER_WORKERS | requests synthesised at once by the regular workers |
| express_workers | PIPER_EXPRESS_WORKERS | more threads, only for a tenant well within its share |
| background_nice | PIPER_BACKGROUND_NICE | how much lower the regular workers' CPU priority is (nice steps) |
| op_threads | PIPER_OP_THREADS | onnxruntime threads per inference (1: on the worker's thread; 0: its defaults) |

The express lane and the priorities are tts_engine/fair_workers.py; threads per run,
tts_engine/piper/session.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tts_engine.triton_inputs import model_parameter

# (parameter, environment variable, default, lowest, highest)
_FIELDS = {
    "workers": ("workers_per_instance", "PIPER_WORKERS", 4, 1, 64),
    "express_workers": ("express_workers", "PIPER_EXPRESS_WORKERS", 1, 0, 16),
    "background_nice": ("background_nice", "PIPER_BACKGROUND_NICE", 10, 0, 19),
    "op_threads": ("op_threads", "PIPER_OP_THREADS", 1, 0, 64),
}


@dataclass(frozen=True)
class PiperPool:
    workers: int = 4
    express_workers: int = 1
    background_nice: int = 10
    op_threads: int = 1

    @classmethod
    def from_config(cls, model_config: dict[str, Any], environ: Mapping[str, str] | None = None) -> PiperPool:
        """The pool a model config describes, environment variables first; ValueError names a bad value."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field, (param, variable, default, low, high) in _FIELDS.items():
            raw = (env.get(variable) or "").strip() or model_parameter(model_config, param, str(default))
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"piper: {variable} / {param} must be an integer, got {raw!r}") from None
            if not low <= value <= high:
                raise ValueError(f"piper: {variable} / {param} must be within {low}..{high}, got {value}")
            values[field] = value
        return cls(**values)
