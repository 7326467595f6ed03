"""Fixtures for the XTTS engine tests: the tiny model, loaded through the served-artifact loader.

Random weights at GPT-2's init scale make the tiny GPT ignore its context: every request then
yields the same codes whatever its text or voice, and never the stop token, which would let a
batching bug that mixes requests up pass unseen. The fixture therefore scales the GPT blocks'
weights up (so text and conditioning latents change the codes) and raises the stop logit a little
(so utterances end at different lengths). The reference path runs on the very same modules.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

GPT_WEIGHT_SCALE = 10.0
STOP_LOGIT_BIAS = 1.0


@pytest.fixture(scope="session")
def engine_artifact(tmp_path_factory) -> Path:
    from export.tiny import build_tiny_checkpoint
    from export.xtts import export_xtts

    checkpoint = build_tiny_checkpoint(tmp_path_factory.mktemp("engine-ckpt") / "ckpt", seed=0)
    out = tmp_path_factory.mktemp("engine-artifact") / "xtts"
    return export_xtts(checkpoint, out, onnx=False, test_weights=True)


def sharpen(model) -> None:
    with torch.no_grad():
        for block in model.gpt.gpt.h:
            for layer in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc, block.mlp.c_proj):
                layer.weight.mul_(GPT_WEIGHT_SCALE)
        model.gpt.mel_head.bias[model.gpt.stop_audio_token] += STOP_LOGIT_BIAS


@pytest.fixture(scope="session")
def tiny_model(engine_artifact):
    from tts_engine.xtts.artifact import load_artifact

    model = load_artifact(engine_artifact, device="cpu").model
    sharpen(model)
    return model


@pytest.fixture(scope="session")
def engine(tiny_model):
    from tts_engine.xtts.engine import XttsEngine

    return XttsEngine(tiny_model, device="cpu", max_batch_size=8)


@pytest.fixture
def running_engine(engine):
    engine.start()
    yield engine
    engine.stop()
