"""The `piper` Triton model through a real tritonserver: intelligible speech, speed, errors, metrics."""

from __future__ import annotations

import re
import time

import jiwer
import numpy as np
import pytest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you get home tonight.",
    "Our meeting has been moved to Thursday afternoon.",
    "She sells fresh bread at the market every morning.",
]


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces: WER compares words, not punctuation."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _text(value: str) -> np.ndarray:
    return np.array([value.encode()], dtype=object)


def _speed(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float32)


def test_speech_is_intelligible(triton_piper, transcribe) -> None:
    result = triton_piper.stream("piper", {"TEXT": _text(" ".join(SENTENCES))})
    assert result.error is None, result.error
    assert len(result.chunks) == len(SENTENCES)  # one response per sentence
    assert all(int(chunk["SAMPLE_RATE"][0]) == 22050 for chunk in result.chunks)
    audio = result.audio()
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    heard = normalise(transcribe(audio, 22050))
    wer = jiwer.wer(normalise(" ".join(SENTENCES)), heard)
    assert wer <= 0.10, f"WER {wer:.2f}: heard {heard!r}"


def test_each_response_carries_its_words(triton_piper) -> None:
    import json

    text = " ".join(SENTENCES[:2])
    result = triton_piper.stream("piper", {"TEXT": _text(text)})
    assert result.error is None, result.error
    spoken = []
    for chunk in result.chunks:
        words = json.loads(bytes(chunk["WORDS"].reshape(-1)[0]).decode())
        assert words, "a sentence without words"
        for char_start, char_end, start, end in words:
            assert 0 <= start <= end <= chunk["AUDIO"].size  # sample spans inside this chunk's audio
            spoken.append(text[char_start:char_end])
    assert normalise(" ".join(spoken)) == normalise(text)


def test_speed_shortens_audio(triton_piper) -> None:
    text = "Speaking faster should take noticeably less time than speaking normally."
    normal = triton_piper.stream("piper", {"TEXT": _text(text), "SPEED": _speed(1.0)})
    fast = triton_piper.stream("piper", {"TEXT": _text(text), "SPEED": _speed(1.5)})
    default = triton_piper.stream("piper", {"TEXT": _text(text)})
    assert normal.error is None and fast.error is None and default.error is None
    assert fast.audio().size < 0.85 * normal.audio().size
    assert abs(default.audio().size - normal.audio().size) < 0.15 * normal.audio().size


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"TEXT": _text("")}, "text is empty"),
        ({"TEXT": _text("Hello."), "SPEED": _speed(3.0)}, "SPEED must be in"),
        ({"TEXT": _text("Hello."), "SPEED": _speed(float("nan"))}, "SPEED must be finite"),
        ({"TEXT": np.array([b"\xff\xfe"], dtype=object)}, "not valid UTF-8"),
    ],
)
def test_bad_input_is_an_error_and_the_model_keeps_serving(triton_piper, inputs, message) -> None:
    bad = triton_piper.stream("piper", inputs)
    assert bad.error is not None and message in bad.error
    assert not bad.chunks
    good = triton_piper.stream("piper", {"TEXT": _text("Still here.")})
    assert good.error is None and good.audio().size > 0


def test_metrics_show_the_voice_and_requests(triton_piper) -> None:
    assert triton_piper.stream("piper", {"TEXT": _text("Counting this one.")}).error is None
    text = triton_piper.metrics_text()
    assert 'tts_model_info{model="piper",model_version="1.0.0",test_weights="false"} 1' in text
    assert 'tts_piper_time_to_first_chunk_seconds_count{model="piper"}' in text
    assert 'nv_inference_request_success{model="piper",version="1"}' in text
    deadline = time.monotonic() + 60  # request counters reach the metrics once a second
    while _count(text, "ok") < 1:
        assert time.monotonic() < deadline, "no finished piper request counted"
        time.sleep(0.25)
        text = triton_piper.metrics_text()


def test_cancel_request_stops_a_running_stream(triton_piper) -> None:
    import uuid

    sentences = [f"This is sentence number {n} of a long reading." for n in range(12)]
    request_id = uuid.uuid4().hex
    before = triton_piper.metrics_text()
    result = triton_piper.stream("piper", {"TEXT": _text(" ".join(sentences))}, request_id=request_id,
                                 on_first_chunk=lambda: triton_piper.cancel("piper", request_id))
    assert result.error is None
    assert 1 <= len(result.chunks) < len(sentences)  # stopped early, closed with the final flag
    deadline = time.monotonic() + 60
    while _count(triton_piper.metrics_text(), "cancelled") <= _count(before, "cancelled"):
        assert time.monotonic() < deadline, "the cancellation was never counted"
        time.sleep(0.25)
    assert triton_piper.cancel("piper", "no-such-request").error is None  # unknown ids are harmless


def _count(text: str, outcome: str) -> float:
    prefix = f'tts_requests_total{{model="piper",outcome="{outcome}"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))
