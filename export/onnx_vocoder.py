"""Export XTTS's HiFi-GAN decoder (GPT latents -> 24 kHz waveform) to ONNX, and check it against torch."""

from __future__ import annotations

import copy
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from export.errors import ExportError

log = logging.getLogger(__name__)

OPSET = 18  # verified with onnxruntime 1.32 (CPU); the torch.export-based exporter's default range
INPUT_NAMES = ("latents", "g")
OUTPUT_NAME = "wav"
VERIFY_LENGTHS = (20, 100)
MAX_ABS_DIFF = 1e-3


class OnnxExportError(ExportError):
    """The vocoder could not be exported, or the exported graph disagrees with torch."""


def _without_weight_norm(generator: torch.nn.Module) -> torch.nn.Module:
    """A copy of the generator with its weight-norm parametrizations folded into plain weights.

    A deep copy still shares the generated Parametrized* classes with the original, and removing a
    parametrization deletes the property from that class; each copied module gets its own class first.
    """
    plain = copy.deepcopy(generator)
    for module in plain.modules():
        if parametrize.is_parametrized(module, "weight"):
            shared = type(module)
            namespace = {k: v for k, v in vars(shared).items() if k not in ("__dict__", "__weakref__")}
            module.__class__ = type(shared.__name__, shared.__bases__, namespace)
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return plain


class HifiganForOnnx(torch.nn.Module):
    """HifiDecoder.forward without its squeezes, which drop the batch axis when B == 1 and trace badly.

    latents [B, T, D] -> upsample in time to the 22.05 kHz hop grid, then to 24 kHz -> HiFi-GAN -> wav [B, 1, S].
    """

    def __init__(self, decoder: torch.nn.Module):
        super().__init__()
        # A private copy with weight norm folded into plain weights: the graph then holds constants
        # instead of recomputing every normalised kernel on each call. The speaker encoder stays behind.
        self.generator = _without_weight_norm(decoder.waveform_decoder)
        self.mel_scale = decoder.ar_mel_length_compression / decoder.output_hop_length
        self.rate_scale = decoder.output_sample_rate / decoder.input_sample_rate

    def forward(self, latents: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        z = F.interpolate(latents.transpose(1, 2), scale_factor=[self.mel_scale], mode="linear")
        if self.rate_scale != 1.0:
            z = F.interpolate(z, scale_factor=[self.rate_scale], mode="linear")
        return self.generator(z, g=g)


def export_hifigan_onnx(decoder: torch.nn.Module, latent_dim: int, out_path: Path, opset: int = OPSET) -> None:
    """Write the decoder as ONNX with dynamic batch and time axes: latents [B, T, D], g [B, 512, 1] -> wav [B, 1, S]."""
    wrapper = HifiganForOnnx(decoder).eval()
    example = (torch.randn(1, 24, latent_dim), torch.randn(1, decoder.waveform_decoder.cond_layer.in_channels, 1))
    # Both axes stay symbolic in the ONNX graph (the batch bound only constrains tracing).
    batch, frames = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("frames", min=1)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Both inputs share the batch axis (the exporter notes it), and torch.export's pytree deprecation.
            warnings.filterwarnings("ignore", message=r"# The axis name")
            warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
            program = torch.onnx.export(
                wrapper,
                example,
                dynamo=True,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"latents": {0: batch, 1: frames}, "g": {0: batch}},
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
            program.save(str(out_path))
    except Exception as exc:
        raise OnnxExportError(f"exporting the HiFi-GAN vocoder to ONNX failed: {exc}") from exc


def verify_hifigan_onnx(
    decoder: torch.nn.Module, onnx_path: Path, latent_dim: int, lengths: tuple[int, ...] = VERIFY_LENGTHS, seed: int = 0
) -> float:
    """Max abs difference between the torch decoder and the ONNX graph on seeded random latents."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    g_dim = decoder.waveform_decoder.cond_layer.in_channels
    worst = 0.0
    for frames in lengths:
        latents = torch.randn(1, frames, latent_dim, generator=generator)
        g = torch.randn(1, g_dim, 1, generator=generator)
        with torch.inference_mode():
            expected = decoder(latents, g=g)
        got = session.run([OUTPUT_NAME], {"latents": latents.numpy(), "g": g.numpy()})[0]
        if tuple(got.shape) != tuple(expected.shape):
            raise OnnxExportError(
                f"ONNX vocoder output shape {got.shape} != torch {tuple(expected.shape)} at T={frames}"
            )
        worst = max(worst, (torch.from_numpy(got) - expected).abs().max().item())
    return worst


def export_and_verify(
    decoder: torch.nn.Module, latent_dim: int, out_path: Path, tolerance: float = MAX_ABS_DIFF
) -> dict[str, Any]:
    """Export, check agreement with torch, and return the manifest's `vocoder` record."""
    import onnxruntime as ort

    started = time.perf_counter()
    decoder.eval()
    g_dim = decoder.waveform_decoder.cond_layer.in_channels
    export_hifigan_onnx(decoder, latent_dim, out_path)
    max_abs_diff = verify_hifigan_onnx(decoder, out_path, latent_dim)
    if max_abs_diff > tolerance:
        raise OnnxExportError(f"ONNX vocoder disagrees with torch: max abs diff {max_abs_diff:.3g} > {tolerance:g}")
    log.info("exported %s in %.1f s (max abs diff vs torch %.2g)", out_path.name, time.perf_counter() - started,
             max_abs_diff)
    return {
        "onnx": out_path.name,
        "opset": OPSET,
        "inputs": {"latents": ["batch", "frames", latent_dim], "g": ["batch", g_dim, 1]},
        "output": {"wav": ["batch", 1, "samples"]},
        "verified": {
            "max_abs_diff": max_abs_diff,
            "tolerance": tolerance,
            "lengths": list(VERIFY_LENGTHS),
            "onnxruntime": ort.__version__,
        },
    }
