"""The decode step's packed (oneDNN) projections agree with the model's own Conv1D layers."""

from __future__ import annotations

import torch
from engine_helpers import voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.gpt_decoder import GptDecoder

TEXTS = ["hello world, this is a test.", "hi.", "the quick brown fox jumps over the lazy dog"]


def _decoder(model, packed: bool) -> GptDecoder:
    return GptDecoder(model.gpt, max_batch=4, max_seq=256, device=torch.device("cpu"), dtype=torch.float32,
                      packed_linears=packed)


def test_packed_decode_matches_dense_decode(tiny_model):
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4, prefix_cache_voices=0)
    packed, dense = _decoder(tiny_model, True), _decoder(tiny_model, False)
    assert packed._packed is not None and dense._packed is None
    lengths = []
    with torch.inference_mode():
        for row, text in enumerate(TEXTS):
            cond, tokens = engine.intake.cond_tensor(voice(row)[0]), engine.intake.tokenize(text, "en")[0]
            prefix = packed.prefix_embedding(cond, tokens)
            packed.prefill(row, prefix)
            dense.prefill(row, prefix)
            lengths.append(prefix.shape[0])
        tokens = torch.tensor([5, 17, 300])
        for step in range(1, 4):  # a few steps, so the packed path also reads what it wrote
            positions = torch.full((3,), step)
            max_len = max(lengths) + step
            got = packed.decode(3, tokens, positions, max_len)
            want = dense.decode(3, tokens, positions, max_len)
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
            tokens = got[0].argmax(dim=-1)
