"""The exported ONNX HiFi-GAN agrees with the torch decoder, and select_vocoder honours the requested backend."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tts_engine.xtts.artifact import ArtifactError
from tts_engine.xtts.onnx_vocoder import BACKEND_ENV, OnnxVocoder, select_vocoder

# Observed ~4e-7 on random latents; the bound leaves room for other CPUs' kernels, far below audible.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def onnx_vocoder(tiny_artifact):
    return OnnxVocoder(tiny_artifact / "hifigan.onnx", "cpu")


@pytest.mark.parametrize(("batch", "frames"), [(1, 20), (1, 50), (2, 7)])
def test_onnx_matches_torch(loaded_artifact, onnx_vocoder, batch, frames):
    generator = torch.Generator().manual_seed(frames)
    latents = torch.randn(batch, frames, 128, generator=generator)
    g = torch.randn(batch, 512, 1, generator=generator)
    if batch == 1:
        with torch.inference_mode():
            expected = loaded_artifact.model.hifigan_decoder(latents, g=g)
    else:  # the torch decoder squeezes batch 1 away; compare row by row
        with torch.inference_mode():
            expected = torch.cat([loaded_artifact.model.hifigan_decoder(latents[i:i + 1], g=g[i:i + 1])
                                  for i in range(batch)])
    got = onnx_vocoder(latents, g=g)
    samples = frames * 4 * 24000 // 22050 * 256  # 1024 samples per frame at 22.05 kHz, resampled to 24 kHz
    assert isinstance(got, torch.Tensor) and got.shape == expected.shape == (batch, 1, samples)
    assert (got - expected).abs().max().item() < TOLERANCE


def test_onnx_vocoder_needs_the_speaker_embedding(onnx_vocoder):
    with pytest.raises(ValueError, match="speaker embedding"):
        onnx_vocoder(torch.zeros(1, 4, 128))
    with pytest.raises(ValueError, match=r"latents must be \[B, T, 128\]"):
        onnx_vocoder(torch.zeros(1, 4, 64), g=torch.zeros(1, 512, 1))


def test_select_vocoder_honours_argument_and_environment(loaded_artifact, monkeypatch):
    torch_decoder = loaded_artifact.model.hifigan_decoder
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert select_vocoder(loaded_artifact, "cpu", backend="torch") is torch_decoder
    assert isinstance(select_vocoder(loaded_artifact, "cpu", backend="onnx"), OnnxVocoder)
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert select_vocoder(loaded_artifact, "cpu", backend="onnx") is torch_decoder
    monkeypatch.setenv(BACKEND_ENV, "onnx")
    assert isinstance(select_vocoder(loaded_artifact, "cpu"), OnnxVocoder)
    monkeypatch.setenv(BACKEND_ENV, "tensorrt")
    with pytest.raises(ValueError, match="not one of auto, torch, onnx"):
        select_vocoder(loaded_artifact, "cpu")


def test_auto_picks_one_of_the_two(loaded_artifact, monkeypatch, caplog):
    monkeypatch.setenv(BACKEND_ENV, "auto")
    with caplog.at_level("INFO", logger="tts_engine.xtts.onnx_vocoder"):
        chosen = select_vocoder(loaded_artifact, "cpu")
    assert chosen is loaded_artifact.model.hifigan_decoder or isinstance(chosen, OnnxVocoder)
    assert "torch" in caplog.text and "onnx" in caplog.text and " ms" in caplog.text


def test_artifact_without_onnx(loaded_artifact, monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    manifest = {**loaded_artifact.manifest, "vocoder": {"onnx": None}}
    no_onnx = dataclasses.replace(loaded_artifact, manifest=manifest)
    assert select_vocoder(no_onnx, "cpu") is loaded_artifact.model.hifigan_decoder
    with pytest.raises(ArtifactError, match="without an ONNX vocoder"):
        select_vocoder(no_onnx, "cpu", backend="onnx")
