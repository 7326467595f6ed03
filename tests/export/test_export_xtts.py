"""export_xtts: a Coqui checkpoint in any of its layouts becomes a complete, atomic, self-describing artifact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from export_helpers import link_checkpoint

from export.errors import ExportError
from export.tiny import TINY_SPEAKERS
from export.xtts import export_xtts
from tts_engine.xtts.languages import XTTS_LANGUAGES


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def test_manifest_describes_the_files_and_the_model(tiny_artifact):
    manifest = manifest_of(tiny_artifact)
    on_disk = sorted(p.name for p in tiny_artifact.iterdir() if p.name != "manifest.json")
    assert on_disk == ["config.json", "hifigan_frames.onnx", "model.pth", "speakers_xtts.pth", "vocab.json"]
    assert sorted(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        assert entry == {"sha256": sha256(tiny_artifact / name), "bytes": (tiny_artifact / name).stat().st_size}
    assert manifest["format_version"] == 1 and manifest["model"] == "xtts-v2"
    assert manifest["model_version"] == manifest["files"]["model.pth"]["sha256"][:12]
    assert manifest["test_weights"] is True
    assert manifest["gpt"] == {
        "layers": 2, "model_dim": 128, "heads": 4, "max_audio_tokens": 64, "max_text_tokens": 402,
        "cond_latent_tokens": 32,
    }
    assert manifest["languages"] == list(XTTS_LANGUAGES)
    assert manifest["sample_rate"] == 24000 and manifest["speaker_embedding_dim"] == 512
    assert manifest["speakers"] == list(TINY_SPEAKERS)
    vocoder = manifest["vocoder"]
    assert vocoder["onnx"] == "hifigan_frames.onnx" and vocoder["level"] == "frames" and vocoder["hop"] == 256
    assert vocoder["inputs"] == {"frames": ["batch", 128, "frames"], "g": ["batch", 512, 1]}
    assert vocoder["output"] == {"wav": ["batch", 1, "frames*256"]}
    assert vocoder["verified"]["max_abs_diff"] < 1e-4 and vocoder["verified"]["tolerance"] == 1e-3
    assert manifest["source"]["kind"] == "tiny" and manifest["source"]["layout"] == "plain"


def test_model_file_is_normalised(tiny_artifact):
    data = torch.load(tiny_artifact / "model.pth", weights_only=True)
    assert list(data) == ["model"]
    keys = data["model"].keys()
    assert not [k for k in keys if k.startswith(("gpt.gpt_inference.", "dvae.", "xtts."))]
    assert "gpt.gpt.wte.weight" not in keys and "gpt.conditioning_perceiver.latents" in keys
    config = json.loads((tiny_artifact / "config.json").read_text())
    assert config["model"] == "xtts" and config["model_args"]["tokenizer_file"] == ""


def _write_release_style(tiny_checkpoint: Path, dest: Path) -> Path:
    """model.pth as Coqui published it and as its trainer writes it: a pickled XttsConfig, `xtts.`-prefixed
    weights, DVAE and mel-spectrogram trainer modules, v1 inference copies; no config.json beside it."""
    from TTS.tts.configs.xtts_config import XttsArgs, XttsAudioConfig, XttsConfig

    dest.mkdir()
    state = torch.load(tiny_checkpoint / "model.pth", weights_only=True)["model"]
    trainer_state = {f"xtts.{k}": v for k, v in reversed(list(state.items()))}
    trainer_state.update({
        "dvae.codebook.embed": torch.randn(1024, 64),
        "torch_mel_spectrogram_dvae.mel_stft.spectrogram.window": torch.ones(1024),
        "xtts.torch_mel_spectrogram_style_encoder.mel_stft.spectrogram.window": torch.ones(1024),
        "xtts.gpt.gpt_inference.transformer.h.0.ln_1.weight": torch.ones(128),
        "xtts.gpt.gpt.wte.weight": torch.randn(1026, 128),
    })
    config = XttsConfig()
    config.load_json(str(tiny_checkpoint / "config.json"))
    # Released files name these classes at their old module path.
    saved = XttsArgs.__module__, XttsAudioConfig.__module__
    XttsArgs.__module__ = XttsAudioConfig.__module__ = "TTS.tts.models.xtts"
    try:
        torch.save({"config": config, "model": trainer_state, "optimizer": None, "step": 1000}, dest / "model.pth")
    finally:
        XttsArgs.__module__, XttsAudioConfig.__module__ = saved
    (dest / "vocab.json").symlink_to(tiny_checkpoint / "vocab.json")
    return dest


def test_release_style_checkpoint_exports_the_same_weights(tiny_checkpoint, tiny_artifact, tmp_path):
    release = _write_release_style(tiny_checkpoint, tmp_path / "release")
    before = sha256(release / "model.pth")
    out = export_xtts(release, tmp_path / "out", onnx=False)
    manifest = manifest_of(out)
    # Byte-identical weights file, so the same model_version as the plain checkpoint's export
    # (the same seed-0 tiny weights; the key order and storage layout are canonical).
    assert manifest["model_version"] == manifest_of(tiny_artifact)["model_version"]
    assert manifest["source"]["layout"] == "trainer"
    assert manifest["vocoder"] == {"onnx": None} and manifest["speakers"] == []
    assert manifest["test_weights"] is False
    assert sha256(release / "model.pth") == before, "the source checkpoint must never be rewritten"

    with pytest.raises(ExportError, match="already exists"):
        export_xtts(release, out, onnx=False)
    (out / "stale-file").write_text("from an older export")
    export_xtts(release, out, onnx=False, overwrite=True, source={"note": "re-export"})
    assert not (out / "stale-file").exists()
    assert manifest_of(out)["source"]["note"] == "re-export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "release"]


def test_missing_vocab_is_a_clear_error(tiny_checkpoint, tmp_path):
    checkpoint = link_checkpoint(tiny_checkpoint, tmp_path / "ckpt", skip=("vocab.json",))
    with pytest.raises(ExportError, match=r"vocab\.json not found"):
        export_xtts(checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_weights_that_do_not_match_the_config_are_refused(tiny_checkpoint, tmp_path):
    checkpoint = link_checkpoint(tiny_checkpoint, tmp_path / "ckpt", skip=("config.json",))
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    config["model_args"]["gpt_layers"] = 3
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="does not match the architecture"):
        export_xtts(checkpoint, tmp_path / "out", onnx=False)


def test_failed_export_leaves_no_output(tiny_checkpoint, tmp_path):
    # The speakers file is read after model.pth, config.json and vocab.json are already written.
    checkpoint = link_checkpoint(tiny_checkpoint, tmp_path / "ckpt", skip=("speakers_xtts.pth",))
    (checkpoint / "speakers_xtts.pth").write_bytes(b"not a torch file")
    with pytest.raises(ExportError, match="speakers"):
        export_xtts(checkpoint, tmp_path / "out" / "xtts", onnx=False)
    assert list((tmp_path / "out").iterdir()) == []  # no artifact and no temporary folder either
