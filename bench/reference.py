"""The reference way peers serve XTTS: Coqui's `Xtts.inference_stream`, one request at a time behind a lock.

This is what the official XTTS streaming server and openedai-speech do: every request takes a
process-wide lock and streams from `inference_stream`, which generates with transformers and
re-runs HiFi-GAN over all latents so far at every chunk.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch

from bench.models import BenchModel
from bench.workload import BenchRequest

STREAM_CHUNK_SIZE = 20  # inference_stream's default: tokens per re-vocoded chunk


class TokenCounter:
    """Counts the audio tokens the reference really generated (one latent per yielded token)."""

    def __init__(self) -> None:
        self.count = 0


class ReferenceServer:
    """`inference_stream` behind a threading.Lock, on the benchmark model's weights."""

    name = "reference"

    def __init__(self, bench_model: BenchModel, stream_chunk_size: int = STREAM_CHUNK_SIZE):
        self.bm = bench_model
        self.stream_chunk_size = stream_chunk_size
        self.lock = threading.Lock()

    def stream(self, request: BenchRequest, on_tokens: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        """Yield the request's audio chunks (float32, 24 kHz); holds the lock for the whole request."""
        model = self.bm.model
        with self.lock:
            torch.manual_seed(request.seed)
            counting = _count_tokens(model, on_tokens)
            # A half-precision GPT next to a float32 vocoder: autocast reconciles them, as a peer would use it.
            autocast = (
                torch.autocast(device_type=self.bm.device.type, dtype=self.bm.dtype)
                if self.bm.dtype != torch.float32 else contextlib.nullcontext()
            )
            try:
                with autocast:
                    for chunk in model.inference_stream(
                        request.text,
                        request.language,
                        self.bm.gpt_cond_latent,
                        self.bm.speaker_embedding,
                        stream_chunk_size=self.stream_chunk_size,
                        min_new_tokens=request.tokens,
                        max_new_tokens=request.tokens,
                    ):
                        yield chunk.float().cpu().numpy()
            finally:
                counting.restore()


class _count_tokens:  # noqa: N801 - used like a context helper
    """Wraps the GPT's stream generator to count the tokens it yields, then restores it."""

    def __init__(self, model, on_tokens: Callable[[int], None] | None):
        gpt = model.gpt
        self.gpt = gpt
        self.original = gpt.get_generator

        def get_generator(*args, **kwargs):
            for item in self.original(*args, **kwargs):
                if on_tokens is not None:
                    on_tokens(1)
                yield item

        gpt.get_generator = get_generator

    def restore(self) -> None:
        self.gpt.get_generator = self.original
