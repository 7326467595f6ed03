"""Reading Coqui XTTS-v2 checkpoints in the layouts found in the wild, without modifying them.

- release: model.pth = {"config": <pickled XttsConfig>, "model": state_dict} (Coqui's published files;
  the pickle names classes at their old module path, TTS.tts.models.xtts);
- trainer: model.pth = {"model": {"xtts.gpt...": ..., "dvae...": ...}, "optimizer": ..., ...} from GPTTrainer;
- plain: model.pth = {"model": state_dict} (what the served artifact itself holds).

Coqui's own loader rewrites a release model.pth in place; this module only reads.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from export.errors import ExportError
from tts_engine.xtts.artifact import CONFIG_FILE, MODEL_FILE, SPEAKERS_FILE, VOCAB_FILE

# Top-level modules of the GPT trainer that inference never uses.
TRAINER_ONLY_MODULES = ("dvae", "torch_mel_spectrogram_dvae", "torch_mel_spectrogram_style_encoder")
# Rebuilt by init_gpt_for_inference from the trained GPT, or unused (GPT-2's own token embedding).
DERIVED_PREFIXES = ("gpt.gpt_inference.",)
DERIVED_KEYS = ("gpt.gpt.wte.weight",)
TRAINER_PREFIX = "xtts."


class CheckpointError(ExportError):
    """The checkpoint folder is missing a file or holds something that is not an XTTS-v2 checkpoint."""


@dataclass
class CoquiCheckpoint:
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]  # plain-dict XttsConfig
    vocab_path: Path
    speakers_path: Path | None
    layout: str  # "release" | "trainer" | "plain"


def _legacy_config_globals() -> list:
    """Classes a release model.pth may pickle, under their current and their old module paths."""
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.configs.xtts_config import XttsArgs, XttsAudioConfig, XttsConfig

    return [
        XttsConfig, XttsArgs, XttsAudioConfig, BaseDatasetConfig,
        (XttsArgs, "TTS.tts.models.xtts.XttsArgs"),
        (XttsAudioConfig, "TTS.tts.models.xtts.XttsAudioConfig"),
    ]


def load_model_file(model_path: Path) -> dict[str, Any]:
    """torch.load with weights_only (no arbitrary code), allowing only XTTS config classes besides tensors."""
    try:
        try:
            data = torch.load(model_path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            with torch.serialization.safe_globals(_legacy_config_globals()):
                data = torch.load(model_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{model_path} is not a loadable XTTS checkpoint: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{model_path} holds a {type(data).__name__}, expected a dict with a 'model' state dict")
    return data


def _config_to_dict(config: Any, source: Path) -> dict[str, Any]:
    from TTS.tts.configs.xtts_config import XttsConfig

    if isinstance(config, XttsConfig):
        return config.to_dict()
    if isinstance(config, dict):
        return config
    raise CheckpointError(f"{source}: config is a {type(config).__name__}, expected an XttsConfig or a dict")


def normalise_state_dict(raw: dict[str, Any], source: Path) -> tuple[dict[str, torch.Tensor], bool]:
    """Drop trainer prefixes, trainer-only modules and derived weights. Returns (state, had_trainer_keys)."""
    state: dict[str, torch.Tensor] = {}
    trainer = False
    for key, value in raw.items():
        if key.startswith(TRAINER_PREFIX):
            key = key[len(TRAINER_PREFIX):]
            trainer = True
        if key.split(".", 1)[0] in TRAINER_ONLY_MODULES:
            trainer = True
            continue
        if key.startswith(DERIVED_PREFIXES) or key in DERIVED_KEYS:
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        if key in state:
            raise CheckpointError(f"{source}: {key!r} appears both with and without the {TRAINER_PREFIX!r} prefix")
        state[key] = value
    return state, trainer


def read_checkpoint(checkpoint_dir: str | Path) -> CoquiCheckpoint:
    """Read model.pth, config.json (or the config pickled in model.pth), vocab.json and speakers_xtts.pth."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} does not exist")
    model_path = root / MODEL_FILE
    vocab_path = root / VOCAB_FILE
    for required in (model_path, vocab_path):
        if not required.is_file():
            raise CheckpointError(
                f"{required} not found: an XTTS-v2 checkpoint folder holds {MODEL_FILE}, {CONFIG_FILE}, "
                f"{VOCAB_FILE} and optionally {SPEAKERS_FILE}"
            )

    data = load_model_file(model_path)
    model = data.get("model")
    if isinstance(model, dict):
        raw_state = model
    elif data and all(isinstance(v, torch.Tensor) for v in data.values()):
        raw_state = data  # a bare state dict
    else:
        raise CheckpointError(f"{model_path} has no 'model' state dict (top-level keys: {sorted(data)[:10]})")
    state, trainer = normalise_state_dict(raw_state, model_path)
    if not state:
        raise CheckpointError(f"{model_path}: the state dict is empty")

    config_path = root / CONFIG_FILE
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise CheckpointError(f"{config_path} must hold a JSON object")
    elif "config" in data:
        config = _config_to_dict(data["config"], model_path)
    else:
        raise CheckpointError(f"{config_path} not found and {model_path} carries no config")

    pickled_config = "config" in data and not isinstance(data["config"], dict)
    layout = "trainer" if trainer else ("release" if pickled_config else "plain")
    speakers_path = root / SPEAKERS_FILE
    return CoquiCheckpoint(
        state_dict=state,
        config=config,
        vocab_path=vocab_path,
        speakers_path=speakers_path if speakers_path.is_file() else None,
        layout=layout,
    )


def read_speakers(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """speakers_xtts.pth: name -> {"gpt_cond_latent": [1, 32, D], "speaker_embedding": [1, 512, 1]}."""
    try:
        speakers = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a loadable speakers file: {exc}") from exc
    if not isinstance(speakers, dict):
        raise CheckpointError(f"{path} must hold a dict of speakers")
    for name, entry in speakers.items():
        if not isinstance(name, str) or not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), torch.Tensor) for k in ("gpt_cond_latent", "speaker_embedding")
        ):
            raise CheckpointError(f"{path}: speaker {name!r} needs gpt_cond_latent and speaker_embedding tensors")
    return speakers
