"""load_artifact: validates the manifest and files, then loads a Coqui Xtts that synthesises, all offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from export_helpers import link_artifact

from export.tiny import TINY_SPEAKERS
from tts_engine.xtts.artifact import ArtifactError, load_artifact, read_manifest, studio_speakers, verify_files

ENGINE_SOURCES = Path(__file__).resolve().parents[2] / "tts_engine"


def test_loaded_model_synthesises(loaded_artifact):
    assert loaded_artifact.test_weights and loaded_artifact.model_version == loaded_artifact.manifest["model_version"]
    latent, embedding = studio_speakers(loaded_artifact)[TINY_SPEAKERS[0]]
    torch.manual_seed(0)
    out = loaded_artifact.model.inference("hello world.", "en", latent, embedding, temperature=0.7, top_k=10)
    wav = torch.as_tensor(out["wav"])
    assert wav.numel() > 1024 and torch.isfinite(wav).all()


def test_studio_speakers_have_the_served_shapes(loaded_artifact):
    speakers = studio_speakers(loaded_artifact)
    assert list(speakers) == list(TINY_SPEAKERS)
    for latent, embedding in speakers.values():
        assert tuple(latent.shape) == (1, 32, 128) and tuple(embedding.shape) == (1, 512, 1)


def test_engine_never_fetches_from_a_hub():
    # The loader fixture runs with sockets refused; this guards against a hub call creeping in later.
    for path in ENGINE_SOURCES.rglob("*.py"):
        text = path.read_text()
        for call in ("snapshot_download", "hf_hub_download", "from_pretrained(", "ModelManager"):
            assert call not in text, f"{path} calls {call}"


def test_missing_manifest(tmp_path):
    with pytest.raises(ArtifactError, match="not an exported XTTS artifact"):
        load_artifact(tmp_path)


def test_corrupt_manifest(tiny_artifact, tmp_path):
    artifact = link_artifact(tiny_artifact, tmp_path / "a")
    (artifact / "manifest.json").write_text('{"format_version": 1, "model": ')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(artifact)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
        (lambda m: m.pop("gpt"), "missing keys gpt"),
        (lambda m: m["files"].pop("vocab.json"), "does not list vocab.json"),
        (lambda m: m.update(model_version="000000000000"), "model_version does not match"),
    ],
)
def test_inconsistent_manifest(tiny_artifact, tmp_path, change, message):
    artifact = link_artifact(tiny_artifact, tmp_path / "a")
    manifest = json.loads((artifact / "manifest.json").read_text())
    change(manifest)
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=message):
        load_artifact(artifact)


def test_missing_file(tiny_artifact, tmp_path):
    artifact = link_artifact(tiny_artifact, tmp_path / "a")
    (artifact / "hifigan_frames.onnx").unlink()
    with pytest.raises(ArtifactError, match="hifigan_frames.onnx is listed in the manifest but missing"):
        load_artifact(artifact)


def test_size_mismatch(tiny_artifact, tmp_path):
    artifact = link_artifact(tiny_artifact, tmp_path / "a", copy=("manifest.json", "vocab.json"))
    with open(artifact / "vocab.json", "ab") as f:
        f.write(b" ")
    with pytest.raises(ArtifactError, match=r"vocab\.json has \d+ bytes, the manifest says"):
        load_artifact(artifact)


def test_same_size_tampering_is_caught_by_hashes(tiny_artifact, tmp_path):
    artifact = link_artifact(tiny_artifact, tmp_path / "a", copy=("manifest.json", "config.json"))
    config = (artifact / "config.json").read_bytes()
    (artifact / "config.json").write_bytes(config.replace(b'"xtts"', b'"xTTS"', 1))
    manifest = read_manifest(artifact)
    verify_files(artifact, manifest)  # the cheap check only looks at sizes
    with pytest.raises(ArtifactError, match="sha256 differs"):
        verify_files(artifact, manifest, verify_hashes=True)
