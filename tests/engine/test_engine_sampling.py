"""Sampling: transformers' processors reproduced per row, seeds, and per-request settings in mixed batches."""

from __future__ import annotations

import torch
from engine_helpers import voice
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from tts_engine.xtts.offline import CodeRequest
from tts_engine.xtts.sampling import PLACEHOLDER_ID, SamplingRows
from tts_engine.xtts.types import SynthesisParams

VOCAB, START = 1026, 1024
ROW_PARAMS = [
    SynthesisParams(),  # released defaults
    SynthesisParams(temperature=1.3, top_k=0, top_p=0.5, repetition_penalty=2.0),
    SynthesisParams(temperature=0.5, top_k=5, top_p=1.0, repetition_penalty=1.0),
    SynthesisParams(do_sample=False, repetition_penalty=10.0),
]


def _hf_scores(logits: torch.Tensor, input_ids: torch.Tensor, params: SynthesisParams) -> torch.Tensor:
    """What transformers' generate feeds its sampler (or argmax) for one row, processors in its order."""
    scores = logits[None].clone()
    if params.repetition_penalty != 1.0:
        scores = RepetitionPenaltyLogitsProcessor(params.repetition_penalty)(input_ids[None], scores)
    if params.do_sample:
        if params.temperature != 1.0:
            scores = TemperatureLogitsWarper(params.temperature)(input_ids[None], scores)
        if params.top_k != 0:
            scores = TopKLogitsWarper(params.top_k)(input_ids[None], scores)
        if params.top_p < 1.0:
            scores = TopPLogitsWarper(params.top_p)(input_ids[None], scores)
    return scores[0]


def test_rows_process_logits_like_transformers():
    rows = SamplingRows(len(ROW_PARAMS), VOCAB, 16, torch.device("cpu"))
    history = []
    for row, params in enumerate(ROW_PARAMS):
        rows.reset(row, params, START, torch.rand(16))
        generated = torch.randint(0, VOCAB - 2, (6,))
        rows.seen[row, generated] = True
        # input_ids as XTTS builds them: the placeholder prefix, start_audio_token, then generated ids.
        history.append(torch.cat([torch.full((40,), PLACEHOLDER_ID), torch.tensor([START]), generated]))
    logits = torch.randn(len(ROW_PARAMS), VOCAB) * 3
    penalised = rows.penalise(logits, len(ROW_PARAMS))
    warped = rows.warp(penalised, len(ROW_PARAMS))
    for row, params in enumerate(ROW_PARAMS):
        expected = _hf_scores(logits[row], history[row], params)
        got = warped[row] if params.do_sample else penalised[row]
        assert torch.equal(torch.isinf(got), torch.isinf(expected)), f"row {row}: different ids removed"
        finite = torch.isfinite(expected)
        torch.testing.assert_close(got[finite], expected[finite], rtol=1e-6, atol=1e-6)


def test_draw_follows_the_distribution():
    rows = SamplingRows(1, 8, 4000, torch.device("cpu"))
    rows.reset(0, SynthesisParams(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0), 7, None)
    rows.uniforms[0] = torch.rand(4000, generator=torch.Generator().manual_seed(0))
    probs = torch.tensor([0.5, 0.25, 0.125, 0.125, 0, 0, 0, 0])
    scores = probs.log()[None]
    counts = torch.zeros(8)
    for _ in range(4000):
        counts[rows.draw(scores, 1)[0]] += 1
        rows.step[0] += 1
    assert counts[4:].sum() == 0  # never an id with zero probability
    torch.testing.assert_close(counts / 4000, probs, atol=0.03, rtol=0)


def _sampled(seed: int, text: str = "hello world, this is a test.") -> CodeRequest:
    return CodeRequest(text, "en", voice(2)[0], SynthesisParams(seed=seed, max_new_tokens=30))


def test_same_seed_same_codes_whatever_the_batch(engine):
    [alone] = engine.generate_codes([_sampled(7)])
    crowded = engine.generate_codes([_sampled(1), _sampled(2, "other words"), _sampled(7)])
    assert crowded[2].codes == alone.codes
    assert len(alone.codes) >= 5


def test_different_seeds_differ(engine):
    results = engine.generate_codes([_sampled(seed) for seed in (1, 2, 3)])
    assert len({tuple(r.codes) for r in results}) == 3


def test_greedy_request_in_a_sampling_batch_equals_its_solo_run(engine):
    cond, _ = voice(5)
    greedy = CodeRequest("the quick brown fox", "en", cond, SynthesisParams(do_sample=False))
    [solo] = engine.generate_codes([greedy])
    # Sampling neighbours with other settings; one of them uses top_k=1, which must then be greedy too.
    top1 = CodeRequest("the quick brown fox", "en", cond, SynthesisParams(top_k=1, temperature=2.0, seed=3))
    hot = CodeRequest("bonjour", "en", voice(6)[0], SynthesisParams(temperature=1.5, seed=4))
    mixed = engine.generate_codes([_sampled(11), greedy, hot, top1])
    assert mixed[1].codes == solo.codes
    assert mixed[3].codes == solo.codes
