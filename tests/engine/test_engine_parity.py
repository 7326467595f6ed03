"""Greedy parity: the engine's audio codes equal Coqui's reference `gpt.generate` (as `Xtts.inference` calls it).

Both run the same modules in float32 on the CPU; codes are compared exactly, up to and excluding the
stop token. No tolerance is applied: a flip would show up as a failure here.
"""

from __future__ import annotations

import pytest
import torch
from engine_helpers import reference_generate, reference_latents, strip_stop, voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.offline import CodeRequest
from tts_engine.xtts.types import SynthesisParams

GREEDY = SynthesisParams(do_sample=False)  # repetition_penalty 10.0 as released
TEXTS = [
    "hi.",
    "hello world, this is a test.",
    "the quick brown fox jumps over the lazy dog",
    "numbers one two three four five six seven eight nine ten, and then some more words",
    "bonjour le monde",
    "a",
]


@pytest.mark.parametrize(("seed", "text_index"), [(1, 1), (2, 0), (5, 5)])  # a mix of stopped and full-length
def test_single_request_matches_reference(engine, tiny_model, seed, text_index):
    cond, _ = voice(seed)
    text = TEXTS[text_index]
    [result] = engine.generate_codes([CodeRequest(text, "en", cond, GREEDY)])
    expected = strip_stop(tiny_model, reference_generate(tiny_model, text, "en", cond))
    assert result.codes == expected
    assert len(result.codes) > 0


def _reference_all(model, requests):
    return [strip_stop(model, reference_generate(model, r.text, "en", r.gpt_cond_latent)) for r in requests]


def test_batch_with_staggered_joins_matches_reference(engine, tiny_model):
    requests = [
        CodeRequest(text, "en", voice(10 + i)[0], GREEDY, arrival_step=step)
        for i, (text, step) in enumerate(zip(TEXTS, [0, 0, 2, 3, 7, 12], strict=True))
    ]
    results = engine.generate_codes(requests)
    expected = _reference_all(tiny_model, requests)
    # The check is only meaningful if requests differ and leave at different steps.
    assert len({tuple(e) for e in expected}) == len(expected)
    assert len({len(e) for e in expected}) >= 2
    for result, codes in zip(results, expected, strict=True):
        assert result.codes == codes


def test_queued_requests_join_when_rows_free(tiny_model):
    small = XttsEngine(tiny_model, device="cpu", max_batch_size=3)
    requests = [CodeRequest(text, "en", voice(20 + i)[0], GREEDY, arrival_step=i) for i, text in enumerate(TEXTS)]
    results = small.generate_codes(requests)
    for result, codes in zip(results, _reference_all(tiny_model, requests), strict=True):
        assert result.codes == codes


def test_latents_match_reference_full_pass(engine, tiny_model):
    """One latent per decode step, the stop step included: what `Xtts.inference` vocodes after its [:, :-5] cut."""
    cond, _ = voice(4)
    text = TEXTS[2]
    [result] = engine.generate_codes([CodeRequest(text, "en", cond, GREEDY)])
    codes_with_stop = reference_generate(tiny_model, text, "en", cond)
    expected = reference_latents(tiny_model, text, "en", cond, codes_with_stop)
    latents = result.sentence_latents[0]
    assert latents.shape == expected.shape
    assert latents.shape[0] == len(result.codes) + (1 if result.stopped[0] else 0)
    torch.testing.assert_close(latents, expected, atol=1e-4, rtol=1e-4)
