"""Windowed streaming vocoding: chunks equal the whole utterance vocoded at once; lengths; sentences.

Tolerance: with the default window (13 frames of context and of lookahead, more than HiFi-GAN's
receptive field of about 12 frames) streamed audio equals whole-utterance audio up to float noise,
so the whole signal is held to max abs diff < 1e-4, seams included. With a deliberately too small
window the difference is confined to the seams: < 1e-4 farther than 16 frames from every seam.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from engine_helpers import voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.offline import CodeRequest
from tts_engine.xtts.types import SynthesisParams
from tts_engine.xtts.vocoding import HOP, WindowConfig

TEXT = "hello world, this is a test."
LONG = 6  # voice(6) runs every test text to the token bound (no early stop)


def expected_samples(n_latents: int, speed: float = 1.0) -> int:
    """HifiDecoder's length: 256 samples per frame, frames = floor(floor(T / speed) * 4 * 24000 / 22050)."""
    frames = n_latents
    if speed != 1.0:
        frames = math.floor(frames * (1.0 / speed))
    frames = math.floor(frames * 4.0)
    frames = math.floor(frames * 24000 / 22050)
    return HOP * frames


def _whole_and_stream(engine: XttsEngine, text: str, seed: int, params: SynthesisParams):
    cond, speaker = voice(seed)
    [result] = engine.generate_codes([CodeRequest(text, "en", cond, params)])
    whole = [engine.vocode(latents, speaker, params.speed) for latents in result.sentence_latents]
    with engine:
        chunks = list(engine.submit(text, "en", cond, speaker, params))
    return result, whole, chunks


def _check_chunk_sequence(chunks) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(c.audio.dtype == np.float32 and c.audio.ndim == 1 for c in chunks)


@pytest.mark.parametrize("pipelined", [False, True], ids=["inline", "pipelined"])
def test_stream_equals_whole_utterance(tiny_model, pipelined):
    # Inline vocoding cuts chunks exactly where due; the vocoder thread may merge due chunks when it
    # falls behind, so only the inline engine promises the seams this test needs (>= 3 chunks).
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=8, pipeline_vocoding=pipelined)
    params = SynthesisParams(do_sample=False, max_new_tokens=24, first_chunk_tokens=6, chunk_tokens=6)
    result, [whole], chunks = _whole_and_stream(engine, TEXT, LONG, params)
    _check_chunk_sequence(chunks)
    assert len(chunks) >= (2 if pipelined else 3)
    streamed = np.concatenate([c.audio for c in chunks])
    assert streamed.shape == whole.shape
    assert np.max(np.abs(streamed - whole)) < 1e-4
    assert streamed.size == expected_samples(result.sentence_latents[0].shape[0])


@pytest.mark.parametrize("speed", [0.8, 1.5])
def test_speed_stretches_like_the_reference(engine, speed):
    params = SynthesisParams(do_sample=False, max_new_tokens=12, first_chunk_tokens=4, chunk_tokens=4, speed=speed)
    result, [whole], chunks = _whole_and_stream(engine, TEXT, LONG, params)
    streamed = np.concatenate([c.audio for c in chunks])
    assert streamed.size == whole.size == expected_samples(result.sentence_latents[0].shape[0], speed)
    assert np.max(np.abs(streamed - whole)) < 1e-4


def test_small_window_differs_only_at_seams(tiny_model):
    narrow = XttsEngine(tiny_model, device="cpu", max_batch_size=2, window=WindowConfig(2, 2, 256),
                        pipeline_vocoding=False)  # chunks cut exactly where due
    params = SynthesisParams(do_sample=False, max_new_tokens=40, first_chunk_tokens=16, chunk_tokens=16)
    _, [whole], chunks = _whole_and_stream(narrow, TEXT, LONG, params)
    streamed = np.concatenate([c.audio for c in chunks])
    assert streamed.shape == whole.shape
    seams = np.cumsum([c.audio.size for c in chunks])[:-1]
    assert len(seams) >= 2
    near = np.zeros(streamed.size, dtype=bool)
    for seam in seams:
        near[max(0, seam - 16 * HOP) : seam + 16 * HOP] = True
    assert np.max(np.abs(streamed - whole)[~near]) < 1e-4
    assert np.max(np.abs(streamed - whole)[near]) > 1e-4  # the window really is too small here
    for seam in seams:
        region = slice(max(0, seam - 16 * HOP), seam + 16 * HOP)
        assert np.corrcoef(streamed[region], whole[region])[0, 1] > 0.9


def test_max_tokens_bound_and_audio_length(engine):
    cond, speaker = voice(LONG)
    for bound in (1, 5):
        params = SynthesisParams(do_sample=False, max_new_tokens=bound)
        [result] = engine.generate_codes([CodeRequest(TEXT, "en", cond, params)])
        assert len(result.codes) == bound  # this voice does not stop early
        assert result.sentence_latents[0].shape[0] == bound
        with engine:
            audio = engine.synthesize(TEXT, "en", cond, speaker, params)
        assert audio.size == expected_samples(bound)


def test_model_bound_caps_max_new_tokens(engine):
    params = SynthesisParams(do_sample=False, max_new_tokens=10_000)
    [result] = engine.generate_codes([CodeRequest(TEXT, "en", voice(LONG)[0], params)])
    assert len(result.codes) == engine.max_gen_tokens


def test_long_text_is_split_and_streamed_in_order(engine):
    sentences = [f"sentence number {word} talks about the weather and the sea." for word in
                 ("one", "two", "three", "four", "five", "six")]
    text = " ".join(sentences)
    assert len(text) > 250  # over the English limit: must be split
    params = SynthesisParams(do_sample=False, max_new_tokens=6, first_chunk_tokens=3, chunk_tokens=3)
    result, whole, chunks = _whole_and_stream(engine, text, 3, params)
    assert len(result.sentence_codes) >= 2
    _check_chunk_sequence(chunks)
    streamed = np.concatenate([c.audio for c in chunks])
    expected = np.concatenate(whole)
    assert streamed.shape == expected.shape
    assert np.max(np.abs(streamed - expected)) < 1e-4
