"""Model-free pieces: text splitting, the frame chain against F.interpolate, parameter validation."""

from __future__ import annotations

import pytest
import torch

from tts_engine.xtts.languages import CHAR_LIMITS
from tts_engine.xtts.text import split_sentences, split_text
from tts_engine.xtts.types import SynthesisParams
from tts_engine.xtts.vocoding import LatentFrames, reference_frames

RATE_RATIO = 24000 / 22050


def test_short_text_is_left_untouched():
    assert split_text("  Hello   there.  ", "en") == ["Hello   there."]


SENTENCES = {"en": "This is sentence {}. ", "ja": "これは文{}です。", "zh": "这是第{}句。", "hi": "यह वाक्य {} है। "}


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_long_text_splits_within_limits_in_order(language):
    sentence = SENTENCES[language]
    text = "".join(sentence.format(i) for i in range(60))
    segments = split_text(text, language)
    assert len(segments) > 1
    assert all(0 < len(s) <= CHAR_LIMITS[language] for s in segments)
    joined = ("" if language in ("ja", "zh") else " ").join(segments)
    assert joined.replace(" ", "") == text.replace(" ", "")


def test_overlong_sentence_is_wrapped():
    text = "word " * 200
    segments = split_text(text, "en")
    assert all(len(s) <= 250 for s in segments) and len(segments) >= 4


def test_split_sentences_keeps_punctuation():
    assert split_sentences("One. Two! Three? Four") == ["One.", "Two!", "Three?", "Four"]


@pytest.mark.parametrize("speed", [1.0, 0.8, 1.3, 2.0])
def test_frames_match_the_hifigan_interpolation(speed):
    torch.manual_seed(0)
    frames = LatentFrames(speed, 4.0, RATE_RATIO)
    for n in (2, 3, 5, 8, 20, 61, 300, 700):
        latents = torch.randn(n, 16)
        expected = reference_frames(latents, speed, 4.0, RATE_RATIO)
        total = frames.total(n)
        assert total == expected.shape[1]
        torch.testing.assert_close(frames.frames(latents, 0, total, final=True), expected, atol=1e-6, rtol=0)
        # While latents still arrive, every frame called available is already final.
        for t in range(2, n, max(1, n // 7)):
            available = frames.available(t)
            if available:
                partial = frames.frames(latents[:t], 0, available, final=False)
                torch.testing.assert_close(partial, expected[:, :available], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "change",
    [{"temperature": -1.0}, {"temperature": float("nan")}, {"top_k": 1.5}, {"top_p": 1.5}, {"repetition_penalty": 0.0},
     {"speed": 0.1}, {"do_sample": 1}, {"seed": True}, {"max_new_tokens": -4}, {"first_chunk_tokens": 0},
     {"chunk_tokens": 5000}],
)
def test_params_validation(change):
    with pytest.raises(ValueError, match=next(iter(change))):
        SynthesisParams(**change).validate()


def test_default_params_are_valid():
    SynthesisParams().validate()
    SynthesisParams(do_sample=False, top_k=0, top_p=1.0, seed=0, max_new_tokens=1).validate()
