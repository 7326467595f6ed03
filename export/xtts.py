"""Turn a Coqui XTTS-v2 checkpoint folder into the served artifact (see tts_engine.xtts.artifact).

The artifact is assembled in a temporary folder beside the destination and renamed into place only
once complete, so a failed or interrupted export never leaves a half-written artifact behind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from export.checkpoint import DERIVED_KEYS, DERIVED_PREFIXES, CoquiCheckpoint, read_checkpoint, read_speakers
from export.errors import ExportError
from export.hub import fetch_from_hub  # noqa: F401  (re-exported: `export.xtts.fetch_from_hub`)
from tts_engine.xtts.artifact import (
    CONFIG_FILE,
    FORMAT_VERSION,
    MANIFEST_NAME,
    MODEL_FILE,
    MODEL_NAME,
    ONNX_VOCODER_FILE,
    SPEAKERS_FILE,
    VOCAB_FILE,
    sha256_file,
)

log = logging.getLogger(__name__)

PERCEIVER_LATENTS_KEY = "gpt.conditioning_perceiver.latents"
TEXT_EMBEDDING_KEY = "gpt.text_embedding.weight"
# Training-machine paths that inference never reads; vocab.json always sits beside model.pth.
CLEARED_MODEL_ARGS = {"tokenizer_file": "", "gpt_checkpoint": None, "clvp_checkpoint": None, "decoder_checkpoint": None}


def served_config(raw: dict[str, Any]):
    """The checkpoint's config as an XttsConfig, keeping only fields XttsConfig knows (trainer configs add more)."""
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig

    if raw.get("model", "xtts") != "xtts":
        raise ExportError(f"config.json describes model {raw.get('model')!r}, not 'xtts'")
    config_fields = {f.name for f in dataclasses.fields(XttsConfig)}
    arg_fields = {f.name for f in dataclasses.fields(XttsArgs)}
    data = {k: v for k, v in raw.items() if k in config_fields}
    data["model_args"] = {k: v for k, v in (raw.get("model_args") or {}).items() if k in arg_fields}
    data["model_args"].update(CLEARED_MODEL_ARGS)
    config = XttsConfig()
    try:
        config.from_dict(data)
    except Exception as exc:  # coqpit raises several types for mistyped values
        raise ExportError(f"config.json is not a valid XTTS config: {exc}") from exc
    return config


def _load_into_model(config, checkpoint: CoquiCheckpoint):
    """A Coqui Xtts holding the checkpoint's weights, strictly matched against the architecture in the config."""
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    state = checkpoint.state_dict
    if PERCEIVER_LATENTS_KEY not in state:
        raise ExportError(
            f"{checkpoint.vocab_path.parent}: no {PERCEIVER_LATENTS_KEY} in model.pth; this is not an XTTS-v2 "
            "checkpoint (v2 conditions the GPT through a perceiver resampler)"
        )
    try:
        tokenizer = VoiceBpeTokenizer(vocab_file=str(checkpoint.vocab_path))
        vocab_tokens = tokenizer.get_number_tokens()
    except Exception as exc:
        raise ExportError(f"{checkpoint.vocab_path} is not a valid XTTS vocabulary: {exc}") from exc
    if TEXT_EMBEDDING_KEY in state and state[TEXT_EMBEDDING_KEY].shape[0] != vocab_tokens:
        raise ExportError(
            f"{checkpoint.vocab_path} has {vocab_tokens} tokens but the checkpoint's text embedding has "
            f"{state[TEXT_EMBEDDING_KEY].shape[0]} rows: vocab.json belongs to another model"
        )
    model = Xtts(config)
    model.tokenizer = tokenizer
    model.init_models()
    expected = {
        k for k in model.state_dict() if not k.startswith(DERIVED_PREFIXES) and k not in DERIVED_KEYS
    }
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ExportError(
            "model.pth does not match the architecture in config.json: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
            "check gpt_layers / gpt_n_model_channels / gpt_use_perceiver_resampler in config.json"
        )
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ExportError(f"model.pth does not match the architecture in config.json: {exc}") from exc
    model.eval()
    return model


def _canonical_state(model, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights in the model's own key order, each in its own storage, so equal weights give equal bytes."""
    ordered = {}
    for key in model.state_dict():
        if key in state:
            tensor = state[key].detach().contiguous()
            if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
                tensor = tensor.clone()
            ordered[key] = tensor
    return ordered


def _languages(config) -> list[str]:
    """Base language codes ('zh-cn' -> 'zh'), as the engine and control plane name them."""
    seen: list[str] = []
    for lang in config.languages:
        base = str(lang).strip().lower().split("-")[0]
        if base and base not in seen:
            seen.append(base)
    return seen


def _check_speakers(speakers: dict, cond_tokens: int, model_dim: int, embedding_dim: int, path: Path) -> None:
    for name, entry in speakers.items():
        latent, embedding = entry["gpt_cond_latent"], entry["speaker_embedding"]
        if tuple(latent.shape[-2:]) != (cond_tokens, model_dim) or embedding.shape[-2] != embedding_dim:
            raise ExportError(
                f"{path}: speaker {name!r} has latents {tuple(latent.shape)} / embedding {tuple(embedding.shape)}, "
                f"expected [1, {cond_tokens}, {model_dim}] / [1, {embedding_dim}, 1]"
            )


def _make_readable(folder: Path) -> None:
    """mkdtemp creates the folder 0700; the server reading the artifact may run as another user."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def _publish(tmp: Path, output: Path, overwrite: bool) -> None:
    """Rename the finished folder into place; an existing artifact is swapped out only when overwriting."""
    if not output.exists():
        tmp.rename(output)
        return
    if not overwrite:
        raise ExportError(f"{output} already exists; pass overwrite=True (--overwrite) to replace it")
    retired = output.with_name(f".{output.name}.old-{uuid.uuid4().hex[:8]}")
    output.rename(retired)
    try:
        tmp.rename(output)
    except BaseException:
        retired.rename(output)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _toolchain() -> dict[str, str]:
    import TTS

    versions = {"torch": torch.__version__, "coqui-tts": getattr(TTS, "__version__", "unknown")}
    try:
        import onnx
        import onnxruntime

        versions.update({"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__})
    except ImportError:
        pass
    return versions


def export_xtts(
    checkpoint_dir: str | Path,
    output_dir: str | Path,
    *,
    onnx: bool = True,
    test_weights: bool = False,
    source: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Export the Coqui XTTS-v2 checkpoint in `checkpoint_dir` as a served artifact at `output_dir`.

    Raises ExportError (with what to fix) for a missing file, a checkpoint that is not XTTS-v2, a vocab or
    config that does not match the weights, an existing output without `overwrite`, or an ONNX vocoder
    that disagrees with torch. Returns the artifact's path.
    """
    started = time.perf_counter()
    checkpoint_dir = Path(checkpoint_dir).absolute()
    output = Path(output_dir).absolute()
    if output.exists() and not overwrite:
        raise ExportError(f"{output} already exists; pass overwrite=True (--overwrite) to replace it")
    if output == checkpoint_dir or checkpoint_dir in output.parents:
        raise ExportError(f"the output {output} must not be the checkpoint folder or lie inside it")

    checkpoint = read_checkpoint(checkpoint_dir)
    config = served_config(checkpoint.config)
    model = _load_into_model(config, checkpoint)
    args = config.model_args
    state = _canonical_state(model, checkpoint.state_dict)
    cond_tokens = int(state[PERCEIVER_LATENTS_KEY].shape[0])
    log.info("read %s checkpoint %s (%d tensors, %.1f M parameters)", checkpoint.layout, checkpoint_dir,
             len(state), sum(t.numel() for t in state.values()) / 1e6)

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    try:
        torch.save({"model": state}, tmp / MODEL_FILE)
        config.save_json(str(tmp / CONFIG_FILE))
        shutil.copyfile(checkpoint.vocab_path, tmp / VOCAB_FILE)
        speaker_names: list[str] = []
        if checkpoint.speakers_path is not None:
            speakers = read_speakers(checkpoint.speakers_path)
            _check_speakers(speakers, cond_tokens, args.gpt_n_model_channels, args.d_vector_dim,
                            checkpoint.speakers_path)
            shutil.copyfile(checkpoint.speakers_path, tmp / SPEAKERS_FILE)
            speaker_names = list(speakers)
        vocoder: dict[str, Any] = {"onnx": None}
        if onnx:
            from export.onnx_vocoder import export_and_verify

            vocoder = export_and_verify(model.hifigan_decoder, tmp / ONNX_VOCODER_FILE)

        files: dict[str, dict[str, Any]] = {
            path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
            for path in sorted(tmp.iterdir())
        }
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": MODEL_NAME,
            "model_version": files[MODEL_FILE]["sha256"][:12],
            "test_weights": bool(test_weights),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": {"kind": "checkpoint", "path": str(checkpoint_dir), "layout": checkpoint.layout,
                       **(source or {})},
            "languages": _languages(config),
            "sample_rate": int(args.output_sample_rate),
            "gpt": {
                "layers": int(args.gpt_layers),
                "model_dim": int(args.gpt_n_model_channels),
                "heads": int(args.gpt_n_heads),
                "max_audio_tokens": int(args.gpt_max_audio_tokens),
                "max_text_tokens": int(args.gpt_max_text_tokens),
                "cond_latent_tokens": cond_tokens,
            },
            "speaker_embedding_dim": int(args.d_vector_dim),
            "files": files,
            "vocoder": vocoder,
            "speakers": speaker_names,
            "exported_with": _toolchain(),
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _make_readable(tmp)
        _publish(tmp, output, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s (model_version %s) in %.1f s", output, manifest["model_version"],
             time.perf_counter() - started)
    return output


def export_tiny(output_dir: str | Path, seed: int = 0, *, onnx: bool = True, overwrite: bool = False,
                max_audio_tokens: int | None = None) -> Path:
    """The tiny random-weight XTTS-v2 (with two test studio speakers), exported and flagged as test weights.

    `max_audio_tokens` shortens every sentence (load runs: the serving path, not the audio length)."""
    from export.tiny import build_tiny_checkpoint

    output = Path(output_dir).absolute()
    if output.exists() and not overwrite:
        raise ExportError(f"{output} already exists; pass overwrite=True (--overwrite) to replace it")
    with tempfile.TemporaryDirectory(prefix="xtts-tiny-checkpoint-") as work:
        checkpoint = build_tiny_checkpoint(Path(work), seed=seed, with_speakers=True,
                                           max_audio_tokens=max_audio_tokens)
        return export_xtts(
            checkpoint, output, onnx=onnx, test_weights=True, overwrite=overwrite,
            source={"kind": "tiny", "path": None, "seed": seed},
        )
