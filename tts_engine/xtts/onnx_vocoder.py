"""The exported HiFi-GAN vocoder on onnxruntime, and the choice between it and the torch decoder.

Both take GPT latents [B, T, D] and the speaker embedding g [B, 512, 1] and return a waveform
[B, 1, S] at 24 kHz. Which is faster depends on the machine (CPU kind, threads, GPU), so "auto"
times both once at load time on a short fixed input and keeps the faster one.
XTTS_VOCODER_BACKEND=auto|torch|onnx overrides the choice.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from tts_engine.xtts.artifact import XttsArtifact

log = logging.getLogger(__name__)

BACKEND_ENV = "XTTS_VOCODER_BACKEND"
BACKENDS = ("auto", "torch", "onnx")
TIMING_FRAMES = 16  # ~0.75 s of audio: long enough to be representative, short enough for load time
TIMING_RUNS = 3

Vocoder = Callable[..., torch.Tensor]


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else 0


class OnnxVocoder:
    """hifigan.onnx on onnxruntime; call it like `model.hifigan_decoder(latents, g=g)`."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu"):
        import onnxruntime as ort

        self.path = Path(path)
        self.device = torch.device(device)
        providers: list = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": _cuda_index(self.device)}))
            else:
                log.warning("onnxruntime has no CUDA provider (install onnxruntime-gpu); the ONNX vocoder runs on CPU")
        self.session = ort.InferenceSession(str(self.path), providers=providers)
        self.providers = self.session.get_providers()
        self._latent_dim = self.session.get_inputs()[0].shape[2]

    def __call__(self, latents: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if g is None:
            raise ValueError("the XTTS vocoder needs the speaker embedding g [B, 512, 1]")
        if latents.dim() != 3 or (isinstance(self._latent_dim, int) and latents.shape[2] != self._latent_dim):
            raise ValueError(f"latents must be [B, T, {self._latent_dim}], got {tuple(latents.shape)}")
        feeds = {
            "latents": np.ascontiguousarray(latents.detach().to("cpu", torch.float32).numpy()),
            "g": np.ascontiguousarray(g.detach().to("cpu", torch.float32).numpy()),
        }
        wav = self.session.run(["wav"], feeds)[0]
        return torch.from_numpy(wav).to(self.device)

    def __repr__(self) -> str:
        return f"OnnxVocoder({self.path.name}, providers={self.providers})"


def _median_seconds(vocoder: Vocoder, latents: torch.Tensor, g: torch.Tensor, runs: int) -> float:
    sync = torch.cuda.synchronize if latents.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        vocoder(latents, g=g)  # warm-up: first calls allocate and pick kernels
        sync()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            vocoder(latents, g=g)
            sync()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_vocoders(
    candidates: dict[str, Vocoder], latent_dim: int, device: torch.device, runs: int = TIMING_RUNS
) -> dict[str, float]:
    """Median seconds per call of each vocoder on the same seeded input ([1, TIMING_FRAMES, D] latents)."""
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, TIMING_FRAMES, latent_dim, generator=generator).to(device)
    g = torch.randn(1, 512, 1, generator=generator).to(device)
    return {name: _median_seconds(vocoder, latents, g, runs) for name, vocoder in candidates.items()}


def resolve_backend(backend: str = "auto") -> str:
    """The backend to use: XTTS_VOCODER_BACKEND when set, else `backend`."""
    chosen = (os.environ.get(BACKEND_ENV) or backend).strip().lower()
    if chosen not in BACKENDS:
        raise ValueError(f"vocoder backend {chosen!r} is not one of {', '.join(BACKENDS)} (from {BACKEND_ENV} or "
                         "the backend argument)")
    return chosen


def select_vocoder(artifact: XttsArtifact, device: str | torch.device = "cpu", backend: str = "auto") -> Vocoder:
    """The torch HiFi-GAN decoder or the ONNX one, per `backend` (overridden by XTTS_VOCODER_BACKEND).

    "auto" times both on a short fixed input and picks the faster; an artifact exported without ONNX
    always gets the torch decoder under "auto", and an error under "onnx".
    """
    from tts_engine.xtts.artifact import ArtifactError

    device = torch.device(device)
    chosen = resolve_backend(backend)
    torch_decoder = artifact.model.hifigan_decoder
    onnx_name = (artifact.manifest.get("vocoder") or {}).get("onnx")
    if chosen == "torch":
        log.info("vocoder: torch (requested)")
        return torch_decoder
    if onnx_name is None:
        if chosen == "onnx":
            raise ArtifactError(f"{artifact.path} was exported without an ONNX vocoder; re-export with ONNX or "
                                f"set {BACKEND_ENV}=torch")
        log.info("vocoder: torch (the artifact has no ONNX vocoder)")
        return torch_decoder
    onnx_vocoder = OnnxVocoder(artifact.path / onnx_name, device)
    if chosen == "onnx":
        log.info("vocoder: onnx (requested), providers %s", onnx_vocoder.providers)
        return onnx_vocoder
    latent_dim = int(artifact.manifest["gpt"]["model_dim"])
    timings = time_vocoders({"torch": torch_decoder, "onnx": onnx_vocoder}, latent_dim, device)
    best = min(timings, key=timings.get)
    log.info("vocoder: %s (auto; median of %d runs on %d frames: torch %.1f ms, onnx %.1f ms)", best, TIMING_RUNS,
             TIMING_FRAMES, timings["torch"] * 1000, timings["onnx"] * 1000)
    return torch_decoder if best == "torch" else onnx_vocoder
