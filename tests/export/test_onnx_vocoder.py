"""The exported ONNX HiFi-GAN generator agrees with torch, and select_vocoder honours the requested backend."""

from __future__ import annotations

import dataclasses

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from tts_engine.xtts import onnx_vocoder as onnx_vocoder_module
from tts_engine.xtts.artifact import ArtifactError
from tts_engine.xtts.onnx_vocoder import BACKEND_ENV, OnnxVocoder, select_vocoder

# Observed ~4e-7 on random inputs; the bound leaves room for other CPUs' kernels, far below audible.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def onnx_vocoder(tiny_artifact):
    return OnnxVocoder(tiny_artifact / "hifigan_frames.onnx", "cpu")


@pytest.mark.parametrize("frames", [17, 48])
def test_frame_generator_matches_torch(loaded_artifact, onnx_vocoder, frames):
    """Batch 2 windows, as the engine's streaming vocoder hands them to `waveform_decoder(z, g=g)`."""
    rng = torch.Generator().manual_seed(frames)
    z = torch.randn(2, 128, frames, generator=rng)
    g = torch.randn(2, 512, 1, generator=rng)
    with torch.inference_mode():
        expected = loaded_artifact.model.hifigan_decoder.waveform_decoder(z, g=g)
    got = onnx_vocoder.decode_frames(z, g)
    assert isinstance(got, torch.Tensor) and got.shape == expected.shape == (2, 1, frames * 256)
    assert (got - expected).abs().max().item() < TOLERANCE


@pytest.mark.parametrize(("batch", "latents"), [(1, 20), (2, 7)])
def test_latents_call_matches_the_torch_decoder(loaded_artifact, onnx_vocoder, batch, latents):
    rng = torch.Generator().manual_seed(latents)
    x = torch.randn(batch, latents, 128, generator=rng)
    g = torch.randn(batch, 512, 1, generator=rng)
    decoder = loaded_artifact.model.hifigan_decoder
    with torch.inference_mode():  # the torch decoder squeezes batch 1 away; compare row by row
        expected = torch.cat([decoder(x[i:i + 1], g=g[i:i + 1]) for i in range(batch)])
    got = onnx_vocoder(x, g=g)
    samples = latents * 4 * 24000 // 22050 * 256  # 1024 samples per latent at 22.05 kHz, resampled to 24 kHz
    assert got.shape == expected.shape == (batch, 1, samples)
    assert (got - expected).abs().max().item() < TOLERANCE


def test_onnx_vocoder_checks_its_inputs(onnx_vocoder):
    with pytest.raises(ValueError, match="speaker embedding"):
        onnx_vocoder(torch.zeros(1, 4, 128))
    with pytest.raises(ValueError, match="speaker embedding"):
        onnx_vocoder.decode_frames(torch.zeros(2, 128, 4), torch.zeros(1, 512, 1))
    with pytest.raises(ValueError, match=r"latents must be \[B, T, 128\]"):
        onnx_vocoder(torch.zeros(1, 4, 64), g=torch.zeros(1, 512, 1))
    with pytest.raises(ValueError, match=r"frames must be \[B, 128, F\]"):
        onnx_vocoder.decode_frames(torch.zeros(1, 4, 128), torch.zeros(1, 512, 1))


def test_select_vocoder_honours_argument_and_environment(loaded_artifact, monkeypatch):
    torch_decoder = loaded_artifact.model.hifigan_decoder
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert select_vocoder(loaded_artifact, "cpu", backend="torch") is torch_decoder
    assert isinstance(select_vocoder(loaded_artifact, "cpu", backend="onnx"), OnnxVocoder)
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert select_vocoder(loaded_artifact, "cpu") is torch_decoder
    assert isinstance(select_vocoder(loaded_artifact, "cpu", backend="onnx"), OnnxVocoder)  # the argument wins
    monkeypatch.setenv(BACKEND_ENV, "ONNX")
    assert isinstance(select_vocoder(loaded_artifact, "cpu"), OnnxVocoder)
    assert select_vocoder(loaded_artifact, "cpu", backend="torch") is torch_decoder
    monkeypatch.setenv(BACKEND_ENV, "tensorrt")
    with pytest.raises(ValueError, match="not one of auto, torch, onnx"):
        select_vocoder(loaded_artifact, "cpu")


def test_auto_times_both_frame_generators(loaded_artifact, monkeypatch, caplog):
    monkeypatch.setenv(BACKEND_ENV, "auto")
    monkeypatch.setattr(onnx_vocoder_module, "TIMING_RUNS", 1)  # the choice itself is not under test: keep it quick
    with caplog.at_level("INFO", logger="tts_engine.xtts.onnx_vocoder"):
        chosen = select_vocoder(loaded_artifact, "cpu")
    assert chosen is loaded_artifact.model.hifigan_decoder or isinstance(chosen, OnnxVocoder)
    assert "median of 1 runs on a 48-frame window" in caplog.text
    assert "torch" in caplog.text and "onnx" in caplog.text and " ms" in caplog.text


def test_artifact_without_onnx(loaded_artifact, monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    manifest = {**loaded_artifact.manifest, "vocoder": {"onnx": None}}
    no_onnx = dataclasses.replace(loaded_artifact, manifest=manifest)
    assert select_vocoder(no_onnx, "cpu") is loaded_artifact.model.hifigan_decoder
    with pytest.raises(ArtifactError, match="no usable ONNX vocoder"):
        select_vocoder(no_onnx, "cpu", backend="onnx")


def test_a_whole_decoder_graph_is_not_taken_for_frames(loaded_artifact, tmp_path, monkeypatch):
    """An older artifact's graph took latents [B, T, D]; it cannot be windowed, so it is never used."""
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    latents = helper.make_tensor_value_info("latents", TensorProto.FLOAT, ["batch", "frames", 128])
    g = helper.make_tensor_value_info("g", TensorProto.FLOAT, ["batch", 512, 1])
    wav = helper.make_tensor_value_info("wav", TensorProto.FLOAT, ["batch", "frames", 128])
    graph = helper.make_graph([helper.make_node("Identity", ["latents"], ["wav"])], "old", [latents, g], [wav])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "hifigan.onnx")
    old = dataclasses.replace(loaded_artifact, path=tmp_path, manifest={**loaded_artifact.manifest,
                                                                         "vocoder": {"onnx": "hifigan.onnx"}})
    assert select_vocoder(old, "cpu") is loaded_artifact.model.hifigan_decoder
    with pytest.raises(ArtifactError, match="re-export"):
        select_vocoder(old, "cpu", backend="onnx")
