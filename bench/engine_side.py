"""Our engine as a benchmark side: `XttsEngine` in process, continuous batching, windowed vocoding."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.workload import BenchRequest

if TYPE_CHECKING:  # torch and the model: imported by whoever builds one, not by this module
    from bench.models import BenchModel


class EngineSide:
    """Streams requests through one running XttsEngine built on the benchmark model's weights."""

    name = "engine"

    def __init__(self, bench_model: BenchModel, max_batch_size: int = 64, engine: Any = None,
                 vocoder_threads: int = 1, vocode_batch: int | None = None, **params: Any):
        from tts_engine.xtts.engine import XttsEngine

        self.bm = bench_model
        self.params = params  # extra SynthesisParams fields (chunking) for every request
        if engine is None:
            engine = XttsEngine(
                bench_model.model, device=bench_model.device, dtype=bench_model.dtype, max_batch_size=max_batch_size,
                vocoder_threads=vocoder_threads,
                vocode_batch=vocode_batch,  # None: the engine's default for its device
            )
        self.engine = engine
        self.engine.start()

    def close(self) -> None:
        self.engine.stop()

    def synthesis_params(self, request: BenchRequest, **overrides: Any):
        from tts_engine.xtts.types import SynthesisParams

        fields = {"seed": request.seed, "max_new_tokens": request.tokens, **self.params, **overrides}
        return SynthesisParams(**fields)

    def stream(self, request: BenchRequest, on_tokens: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        stream = self.engine.submit(
            request.text,
            request.language,
            self.bm.gpt_cond_latent,
            self.bm.speaker_embedding,
            self.synthesis_params(request),
        )
        done = False
        try:
            for chunk in stream:
                yield np.asarray(chunk.audio, dtype=np.float32)
            done = True
        finally:
            if not done:  # the client went away: free the row as a server would
                stream.cancel()

    def stats_snapshot(self) -> dict[str, float]:
        """Decode steps, tokens, vocoder calls and the windows they vocoded so far, from the engine's own counters."""
        snap = self.engine.stats.snapshot()
        vocode = snap["vocode_batch_size"]
        return {"steps": float(snap["decode_steps"]), "tokens": float(snap["tokens_generated"]),
                "vocode_calls": float(vocode["count"]), "vocode_windows": float(vocode["sum"])}


def average_batch(before: dict[str, float] | None, after: dict[str, float] | None) -> float | None:
    """Rows per decode step between two snapshots (prefilled rows count: they produce a token too)."""
    if before is None or after is None:
        return None
    steps = after["steps"] - before["steps"]
    return round((after["tokens"] - before["tokens"]) / steps, 3) if steps > 0 else None


def average_vocode_batch(before: dict[str, float] | None, after: dict[str, float] | None) -> float | None:
    """Windows per HiFi-GAN call of the vocoder thread between two snapshots."""
    if before is None or after is None or "vocode_calls" not in after:
        return None
    calls = after["vocode_calls"] - before["vocode_calls"]
    return round((after["vocode_windows"] - before["vocode_windows"]) / calls, 3) if calls > 0 else None


def tokens_between(before: dict[str, float] | None, after: dict[str, float] | None) -> int | None:
    if before is None or after is None:
        return None
    return int(after["tokens"] - before["tokens"])
