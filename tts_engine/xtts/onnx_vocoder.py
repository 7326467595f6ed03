"""HiFi-GAN's generator exported to ONNX (hifigan_frames.onnx), and the choice between it and torch.

The artifact's graph is the generator only: vocoder frames [B, D, F] and the speaker embedding
g [B, 512, 1] -> waveform [B, 1, F*256] at 24 kHz. `OnnxVocoder.decode_frames` is the frame-level
entry point the engine's windowed streaming vocoder calls (tts_engine.xtts.vocoding.frame_decoder_for);
calling the object with GPT latents [B, T, D] first applies HifiDecoder's interpolations in torch,
for whole-utterance vocoding.

Which backend is faster depends on the machine (CPU kind, threads, GPU), so "auto" times both once
at load time on a streaming-sized window and keeps the faster one. The backend argument, else
XTTS_VOCODER_BACKEND=auto|torch|onnx, else "auto", decides.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from tts_engine.xtts.artifact import XttsArtifact

log = logging.getLogger(__name__)

BACKEND_ENV = "XTTS_VOCODER_BACKEND"
BACKENDS = ("auto", "torch", "onnx")
INPUT_NAMES = ("frames", "g")
HOP = 256
# A streaming window: 13 frames of context + ~22 new + 13 of lookahead (tts_engine.xtts.vocoding.WindowConfig).
TIMING_FRAMES = 48
TIMING_RUNS = 3  # after one warm-up call each: a few seconds of CPU load time for the full-width HiFi-GAN

FrameDecoder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else 0


class OnnxVocoder:
    """hifigan_frames.onnx on onnxruntime.

    `decode_frames(frames, g)` matches the torch generator (`hifigan_decoder.waveform_decoder(frames, g=g)`);
    `vocoder(latents, g=g)` matches `hifigan_decoder(latents, g=g)`. Outputs are torch tensors on `device`.
    On CPU the session uses `threads` intra-op threads (default: torch's count, the engine's CPU budget,
    so neither backend oversubscribes the cores and their timings compare like with like).
    """

    def __init__(
        self,
        path: str | Path,
        device: str | torch.device = "cpu",
        *,
        stride_ratio: float = 1024 / 256,
        rate_ratio: float = 24000 / 22050,
        threads: int | None = None,
    ):
        import onnxruntime as ort

        self.path = Path(path)
        self.device = torch.device(device)
        self.stride_ratio = stride_ratio
        self.rate_ratio = rate_ratio
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers: list = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": _cuda_index(self.device)}))
            else:
                log.warning("onnxruntime has no CUDA provider (install onnxruntime-gpu); the ONNX vocoder runs on CPU")
        self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        inputs = self.session.get_inputs()
        if tuple(i.name for i in inputs) != INPUT_NAMES:
            raise ValueError(f"{self.path.name} takes {[i.name for i in inputs]}, not HiFi-GAN generator frames "
                             f"{list(INPUT_NAMES)}; re-export the artifact")
        self.providers = self.session.get_providers()
        self.threads = options.intra_op_num_threads
        self.frame_dim = inputs[0].shape[1]

    def decode_frames(self, frames: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """frames [B, D, F], g [B, 512, 1] -> wav [B, 1, F*256]."""
        if frames.dim() != 3 or (isinstance(self.frame_dim, int) and frames.shape[1] != self.frame_dim):
            raise ValueError(f"frames must be [B, {self.frame_dim}, F], got {tuple(frames.shape)}")
        if g is None or g.dim() != 3 or g.shape[0] != frames.shape[0]:
            raise ValueError("the XTTS vocoder needs the speaker embedding g [B, 512, 1], one row per batch item")
        feeds = {
            "frames": np.ascontiguousarray(frames.detach().to("cpu", torch.float32).numpy()),
            "g": np.ascontiguousarray(g.detach().to("cpu", torch.float32).numpy()),
        }
        wav = self.session.run(["wav"], feeds)[0]
        return torch.from_numpy(wav).to(self.device)

    def __call__(self, latents: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """latents [B, T, D] -> wav [B, 1, S], interpolated as HifiDecoder.forward does (minus its squeezes)."""
        if latents.dim() != 3 or (isinstance(self.frame_dim, int) and latents.shape[2] != self.frame_dim):
            raise ValueError(f"latents must be [B, T, {self.frame_dim}], got {tuple(latents.shape)}")
        z = F.interpolate(latents.transpose(1, 2).float(), scale_factor=[self.stride_ratio], mode="linear")
        if self.rate_ratio != 1.0:
            z = F.interpolate(z, scale_factor=[self.rate_ratio], mode="linear")
        return self.decode_frames(z, g)

    def __repr__(self) -> str:
        return f"OnnxVocoder({self.path.name}, providers={self.providers}, threads={self.threads})"


def torch_frame_decoder(decoder: Any) -> FrameDecoder:  # Coqui's HifiDecoder
    generator = decoder.waveform_decoder
    return lambda frames, g: generator(frames, g=g)


def _median_seconds(decode: FrameDecoder, frames: torch.Tensor, g: torch.Tensor, runs: int) -> float:
    sync = torch.cuda.synchronize if frames.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        decode(frames, g)  # warm-up: first calls allocate and pick kernels
        sync()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            decode(frames, g)
            sync()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_frame_decoders(
    candidates: dict[str, FrameDecoder],
    frame_dim: int,
    device: torch.device,
    frames: int = TIMING_FRAMES,
    runs: int = TIMING_RUNS,
) -> dict[str, float]:
    """Median seconds per call of each frame decoder on the same seeded window [1, D, frames]."""
    rng = torch.Generator().manual_seed(0)
    window = torch.randn(1, frame_dim, frames, generator=rng).to(device)
    g = torch.randn(1, 512, 1, generator=rng).to(device)
    return {name: _median_seconds(decode, window, g, runs) for name, decode in candidates.items()}


def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: `backend` when given, else XTTS_VOCODER_BACKEND, else "auto"."""
    chosen = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise ValueError(f"vocoder backend {chosen!r} is not one of {', '.join(BACKENDS)} (from the backend "
                         f"argument or {BACKEND_ENV})")
    return chosen


def select_vocoder(
    artifact: XttsArtifact, device: str | torch.device = "cpu", backend: str | None = None
) -> torch.nn.Module | OnnxVocoder:
    """The torch HifiDecoder or the ONNX generator, per `backend` (None: XTTS_VOCODER_BACKEND, else "auto").

    "auto" times both frame generators on a streaming window and picks the faster; an artifact
    without a usable ONNX generator gets the torch decoder under "auto", and an ArtifactError under "onnx".
    """
    from tts_engine.xtts.artifact import ArtifactError

    device = torch.device(device)
    chosen = resolve_backend(backend)
    torch_decoder = artifact.model.hifigan_decoder
    if chosen == "torch":
        log.info("vocoder: torch (requested)")
        return torch_decoder
    onnx_name = (artifact.manifest.get("vocoder") or {}).get("onnx")
    onnx_vocoder = None
    reason = "the artifact has no ONNX vocoder"
    if onnx_name is not None:
        try:
            onnx_vocoder = OnnxVocoder(
                artifact.path / onnx_name,
                device,
                stride_ratio=torch_decoder.ar_mel_length_compression / torch_decoder.output_hop_length,
                rate_ratio=torch_decoder.output_sample_rate / torch_decoder.input_sample_rate,
            )
        except ValueError as exc:  # a graph from an older export (whole decoder, latents in)
            reason = str(exc)
    if onnx_vocoder is None:
        if chosen == "onnx":
            raise ArtifactError(f"{artifact.path}: no usable ONNX vocoder ({reason}); re-export with ONNX or set "
                                f"{BACKEND_ENV}=torch")
        log.info("vocoder: torch (%s)", reason)
        return torch_decoder
    if chosen == "onnx":
        log.info("vocoder: onnx (requested), %r", onnx_vocoder)
        return onnx_vocoder
    timings = time_frame_decoders(
        {"torch": torch_frame_decoder(torch_decoder), "onnx": onnx_vocoder.decode_frames},
        int(torch_decoder.waveform_decoder.conv_pre.in_channels),
        device,
        frames=TIMING_FRAMES,
        runs=TIMING_RUNS,
    )
    best = min(timings, key=lambda name: timings[name])
    log.info("vocoder: %s (auto; median of %d runs on a %d-frame window: torch %.1f ms with %d threads, "
             "onnx %.1f ms on %s)", best, TIMING_RUNS, TIMING_FRAMES, timings["torch"] * 1000,
             torch.get_num_threads(), timings["onnx"] * 1000, onnx_vocoder)
    return torch_decoder if best == "torch" else onnx_vocoder
