"""Export XTTS's HiFi-GAN generator (vocoder frames -> 24 kHz waveform) to ONNX, and check it against torch.

Only the generator is exported, not the whole HifiDecoder: the engine computes the generator's input
frames itself (the decoder's linear interpolations of the GPT latents, see tts_engine.xtts.vocoding)
so that it can vocode windows of frames while the latents are still being generated. The same graph
also serves whole-utterance vocoding: the runtime applies the interpolations in torch first.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

from export.errors import ExportError

log = logging.getLogger(__name__)

OPSET = 18  # verified with onnxruntime 1.32 (CPU); the torch.export-based exporter's default range
INPUT_NAMES = ("frames", "g")
OUTPUT_NAME = "wav"
HOP = 256  # samples per frame (upsample rates 8*8*2*2)
VERIFY_SHAPES = ((1, 48), (2, 100))  # (batch, frames): a streaming window and a longer batched one
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


class GeneratorForOnnx(torch.nn.Module):
    """HiFi-GAN's generator with g as a required input: frames [B, D, F], g [B, 512, 1] -> wav [B, 1, F*256]."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        # Weight norm folded into plain weights: the graph then holds constants instead of
        # recomputing every normalised kernel on each call.
        self.generator = _without_weight_norm(generator)

    def forward(self, frames: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self.generator(frames, g=g)


def frame_dim(generator: Any) -> int:  # Coqui's HiFi-GAN generator
    return int(generator.conv_pre.in_channels)


def speaker_dim(generator: Any) -> int:
    return int(generator.cond_layer.in_channels)


def export_generator_onnx(generator: torch.nn.Module, out_path: Path, opset: int = OPSET) -> None:
    """Write the generator as ONNX with dynamic batch and frame axes."""
    wrapper = GeneratorForOnnx(generator).eval()
    example = (torch.randn(1, frame_dim(generator), 48), torch.randn(1, speaker_dim(generator), 1))
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
                dynamic_shapes={"frames": {0: batch, 2: frames}, "g": {0: batch}},
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
            if program is None:
                raise OnnxExportError("torch.onnx.export returned no program")
            program.save(str(out_path))
    except Exception as exc:
        raise OnnxExportError(f"exporting the HiFi-GAN generator to ONNX failed: {exc}") from exc


def verify_generator_onnx(
    generator: torch.nn.Module, onnx_path: Path, shapes: tuple[tuple[int, int], ...] = VERIFY_SHAPES, seed: int = 0
) -> float:
    """Max abs difference between the torch generator and the ONNX graph on seeded random frames."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch, n_frames in shapes:
        frames = torch.randn(batch, frame_dim(generator), n_frames, generator=rng)
        g = torch.randn(batch, speaker_dim(generator), 1, generator=rng)
        with torch.inference_mode():
            expected = generator(frames, g=g)
        got = session.run([OUTPUT_NAME], {"frames": frames.numpy(), "g": g.numpy()})[0]
        if tuple(got.shape) != tuple(expected.shape) or got.shape[-1] != n_frames * HOP:
            raise OnnxExportError(
                f"ONNX generator output shape {got.shape} != torch {tuple(expected.shape)} at B={batch}, F={n_frames}"
            )
        worst = max(worst, (torch.from_numpy(got) - expected).abs().max().item())
    return worst


def export_and_verify(decoder: Any, out_path: Path, tolerance: float = MAX_ABS_DIFF) -> dict[str, Any]:
    """Export the HifiDecoder's generator, check agreement with torch, and return the manifest's `vocoder` record."""
    import onnxruntime as ort

    started = time.perf_counter()
    generator = decoder.waveform_decoder.eval()
    export_generator_onnx(generator, out_path)
    max_abs_diff = verify_generator_onnx(generator, out_path)
    if max_abs_diff > tolerance:
        raise OnnxExportError(f"ONNX generator disagrees with torch: max abs diff {max_abs_diff:.3g} > {tolerance:g}")
    log.info("exported %s in %.1f s (max abs diff vs torch %.2g)", out_path.name, time.perf_counter() - started,
             max_abs_diff)
    return {
        "onnx": out_path.name,
        "level": "frames",  # the generator only; the latents -> frames interpolation runs outside the graph
        "opset": OPSET,
        "inputs": {"frames": ["batch", frame_dim(generator), "frames"], "g": ["batch", speaker_dim(generator), 1]},
        "output": {"wav": ["batch", 1, f"frames*{HOP}"]},
        "hop": HOP,
        "verified": {
            "max_abs_diff": max_abs_diff,
            "tolerance": tolerance,
            "shapes": [list(shape) for shape in VERIFY_SHAPES],
            "onnxruntime": ort.__version__,
        },
    }
