"""The engine port with every synthesis stream counted in admission's load (`Admission.engine`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from tts_contract.fairness import Share

if TYPE_CHECKING:
    import numpy as np

    from control_plane.services.admission import Admission
    from control_plane.services.engine_port import AudioChunk, Conditioning, EnginePort, ModelInfo


class MeteredEngine:
    """The engine port, with every synthesis stream counted in its engine's and tenant's load: work in
    flight while it runs, characters completed when it ends normally (a cancelled or failed stream
    measures nothing)."""

    def __init__(self, inner: EnginePort, admission: Admission) -> None:
        self.inner = inner
        self.admission = admission

    async def _metered(self, engine: str, text: str, request_id: str, share: Share | None,
                       stream: AsyncIterator[AudioChunk]) -> AsyncIterator[AudioChunk]:
        chars, tenant = len(text), share.tenant if share else ""
        self.admission.started(engine, request_id, chars, tenant)
        completed = False
        try:
            async for chunk in stream:
                yield chunk
            completed = True
        finally:
            self.admission.finished(engine, chars, completed=completed, tenant=tenant)
            await stream.aclose()  # type: ignore[attr-defined]

    def stream_piper(self, text: str, *, speed: float = 1.0, request_id: str = "",
                     share: Share | None = None) -> AsyncIterator[AudioChunk]:
        return self._metered("piper", text, request_id, share,
                             self.inner.stream_piper(text, speed=speed, request_id=request_id, share=share))

    def stream_xtts(self, text: str, language: str, gpt_cond_latent: np.ndarray, speaker_embedding: np.ndarray, *,
                    speed: float = 1.0, seed: int | None = None, request_id: str = "",
                    share: Share | None = None) -> AsyncIterator[AudioChunk]:
        return self._metered("xtts", text, request_id, share, self.inner.stream_xtts(
            text, language, gpt_cond_latent, speaker_embedding, speed=speed, seed=seed, request_id=request_id,
            share=share))

    async def server_ready(self) -> bool:
        return await self.inner.server_ready()

    async def model_ready(self, name: str) -> bool:
        return await self.inner.model_ready(name)

    async def model_info(self, refresh: bool = False) -> dict[str, ModelInfo]:
        return await self.inner.model_info(refresh)

    async def condition(self, audio: np.ndarray, sample_rate: int) -> Conditioning:
        return await self.inner.condition(audio, sample_rate)

    async def close(self) -> None:
        await self.inner.close()
