"""The served XTTS-v2 artifact: its manifest contract and the loader the engine and Triton use.

An artifact is a folder written by `export.xtts.export_xtts`: manifest.json, model.pth
({"model": state_dict}), config.json, vocab.json, optional speakers_xtts.pth and optional
hifigan_frames.onnx (HiFi-GAN's generator: vocoder frames -> wav; see tts_engine.xtts.onnx_vocoder).
Everything is read from that folder; nothing is ever fetched from a model hub at run time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_NAME = "xtts-v2"
MANIFEST_NAME = "manifest.json"
MODEL_FILE = "model.pth"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
SPEAKERS_FILE = "speakers_xtts.pth"
ONNX_VOCODER_FILE = "hifigan_frames.onnx"  # the HiFi-GAN generator (frames -> wav)
REQUIRED_FILES = (MODEL_FILE, CONFIG_FILE, VOCAB_FILE)
MANIFEST_KEYS = (
    "format_version", "model", "model_version", "test_weights", "created_at", "source", "languages",
    "sample_rate", "gpt", "speaker_embedding_dim", "files", "vocoder", "speakers",
)
GPT_KEYS = ("layers", "model_dim", "heads", "max_audio_tokens", "max_text_tokens", "cond_latent_tokens")


class ArtifactError(Exception):
    """The folder is not a usable XTTS artifact; the message says what is wrong and where."""


@dataclass
class XttsArtifact:
    model: Any  # TTS.tts.models.xtts.Xtts, eval mode, init_gpt_for_inference done
    manifest: dict[str, Any]
    path: Path

    @property
    def model_version(self) -> str:
        return self.manifest["model_version"]

    @property
    def test_weights(self) -> bool:
        return bool(self.manifest["test_weights"])


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse and validate manifest.json of the artifact at `path` (structure only, no file checks)."""
    manifest_path = Path(path) / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path} not found: {path} is not an exported XTTS artifact")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path} must hold a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format_version {manifest.get('format_version')!r} is not supported "
            f"(this loader reads {FORMAT_VERSION}); re-export the checkpoint"
        )
    if manifest.get("model") != MODEL_NAME:
        raise ArtifactError(f"{manifest_path}: model is {manifest.get('model')!r}, expected {MODEL_NAME!r}")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ArtifactError(f"{manifest_path}: missing keys {', '.join(missing)}")
    gpt = manifest["gpt"]
    if not isinstance(gpt, dict) or any(not isinstance(gpt.get(k), int) for k in GPT_KEYS):
        raise ArtifactError(f"{manifest_path}: gpt must hold integers {', '.join(GPT_KEYS)}")
    files = manifest["files"]
    if not isinstance(files, dict) or any(
        not isinstance(e, dict) or not isinstance(e.get("sha256"), str) or not isinstance(e.get("bytes"), int)
        for e in files.values()
    ):
        raise ArtifactError(f"{manifest_path}: files must map names to {{sha256, bytes}}")
    for name in REQUIRED_FILES:
        if name not in files:
            raise ArtifactError(f"{manifest_path}: files does not list {name}")
    if MODEL_FILE in files and files[MODEL_FILE]["sha256"][:12] != manifest["model_version"]:
        raise ArtifactError(f"{manifest_path}: model_version does not match the sha256 of {MODEL_FILE}")
    if not isinstance(manifest["vocoder"], dict) or not isinstance(manifest["languages"], list) or not isinstance(
        manifest["speakers"], list
    ):
        raise ArtifactError(f"{manifest_path}: vocoder must be an object, languages and speakers lists")
    onnx_name = manifest["vocoder"].get("onnx")
    if onnx_name is not None and onnx_name not in files:
        raise ArtifactError(f"{manifest_path}: vocoder.onnx names {onnx_name}, which files does not list")
    return manifest


def verify_files(path: str | Path, manifest: dict[str, Any], verify_hashes: bool = False) -> None:
    """Check every listed file exists with the recorded size (and sha256 when asked: slow for big models)."""
    root = Path(path)
    for name, entry in manifest["files"].items():
        if Path(name).name != name:
            raise ArtifactError(f"{root / MANIFEST_NAME}: file name {name!r} must not contain a path")
        file_path = root / name
        if not file_path.is_file():
            raise ArtifactError(f"{file_path} is listed in the manifest but missing")
        size = file_path.stat().st_size
        if size != entry["bytes"]:
            raise ArtifactError(
                f"{file_path} has {size} bytes, the manifest says {entry['bytes']}: the artifact is incomplete "
                "or was modified; re-export it"
            )
        if verify_hashes and sha256_file(file_path) != entry["sha256"]:
            raise ArtifactError(f"{file_path}: sha256 differs from the manifest; the artifact was modified")


def load_artifact(path: str | Path, device: str | torch.device = "cpu", verify_hashes: bool = False) -> XttsArtifact:
    """Validate the artifact at `path` and load its Coqui Xtts model, ready for inference, on `device`."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a folder")
    manifest = read_manifest(root)
    verify_files(root, manifest, verify_hashes=verify_hashes)

    config = XttsConfig()
    try:
        config.load_json(str(root / CONFIG_FILE))
    except Exception as exc:  # coqpit raises several types for a bad config
        raise ArtifactError(f"{root / CONFIG_FILE} is not a valid XTTS config: {exc}") from exc
    speakers_path = root / SPEAKERS_FILE if SPEAKERS_FILE in manifest["files"] else None
    model = Xtts(config)
    try:
        model.load_checkpoint(
            config,
            checkpoint_dir=str(root),
            vocab_path=str(root / VOCAB_FILE),
            speaker_file_path=str(speakers_path) if speakers_path else None,
            eval=True,
            strict=True,
        )
    except Exception as exc:
        raise ArtifactError(f"cannot load the XTTS model from {root}: {exc}") from exc
    if speakers_path is None:
        # load_checkpoint picks up a stray speakers_xtts.pth by name; only the manifest's files count.
        model.speaker_manager = None
    model.to(torch.device(device))
    log.info(
        "loaded XTTS artifact %s (model_version %s%s) on %s",
        root, manifest["model_version"], ", TEST weights" if manifest["test_weights"] else "", device,
    )
    return XttsArtifact(model=model, manifest=manifest, path=root)


def studio_speakers(artifact: XttsArtifact) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Studio voices shipped with the export: name -> (gpt_cond_latent [1, 32, D], speaker_embedding [1, 512, 1])."""
    manager = getattr(artifact.model, "speaker_manager", None)
    if manager is None:
        return {}
    device = next(artifact.model.parameters()).device
    return {
        name: (entry["gpt_cond_latent"].to(device), entry["speaker_embedding"].to(device))
        for name, entry in manager.speakers.items()
    }
