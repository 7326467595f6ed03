"""The engine port: what the services need of the synthesis engines, and nothing else.

The Triton adapter (`adapters/triton.py`) implements it; so can a pool of Triton replicas or a fake
in a unit test. Streams are async iterators of audio chunks: leaving one early (`aclose()`, or
the consuming task being cancelled) is the cancel, and the adapter tells the engine to stop.
`engine_errors()` is the one place an engine failure becomes a service error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import numpy as np

from control_plane.adapters.triton import (
    AudioChunk,
    Conditioning,
    ModelInfo,
    TritonError,
    TritonTimeout,
    TritonUnavailable,
)
from control_plane.errors import EngineFailed, EngineTimeout, EngineUnavailable
from tts_contract.fairness import Share

__all__ = ["AudioChunk", "Conditioning", "EnginePort", "ModelInfo", "engine_errors"]

ENGINE_RETRY_AFTER_S = 5


class EnginePort(Protocol):
    async def server_ready(self) -> bool: ...

    async def model_ready(self, name: str) -> bool: ...

    async def model_info(self, refresh: bool = False) -> dict[str, ModelInfo]: ...

    async def condition(self, audio: np.ndarray, sample_rate: int) -> Conditioning: ...

    # `share`: the tenant and weight the engines' fair queues serve the request under (tts_contract.fairness).
    def stream_piper(self, text: str, *, speed: float = 1.0, request_id: str = "",
                     share: Share | None = None) -> AsyncIterator[AudioChunk]: ...

    def stream_xtts(
        self, text: str, language: str, gpt_cond_latent: np.ndarray, speaker_embedding: np.ndarray, *,
        speed: float = 1.0, seed: int | None = None, request_id: str = "", share: Share | None = None,
    ) -> AsyncIterator[AudioChunk]: ...

    async def close(self) -> None: ...


@contextlib.contextmanager
def engine_errors(what: str = "synthesis") -> Iterator[None]:
    """Engine failures inside the block become the service errors every surface maps the same way."""
    try:
        yield
    except TritonUnavailable:
        raise EngineUnavailable("engine_unavailable", f"the {what} engine is unavailable; retry later",
                                headers={"Retry-After": str(ENGINE_RETRY_AFTER_S)}) from None
    except TritonTimeout:
        raise EngineTimeout("engine_timeout", f"the {what} engine did not answer in time") from None
    except TritonError as exc:
        code = "conditioning_failed" if what == "conditioning" else "engine_error"
        raise EngineFailed(code, f"{what} failed: {exc}") from None
