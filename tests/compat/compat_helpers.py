"""Helpers of the compatibility tests: reading the audio the clients hand back."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

# What every length check speaks: four sentences, about 10 s. Each has fewer than ten words and no comma, so
# no request cuts its first sentence short (services/first_segment.py; test_pipecat_cartesia checks it), and
# the text is the same four segments as one request, as one request per sentence or one message per sentence.
SPOKEN = ["The gateway speaks every sentence of this text.", "Together they take several seconds to say.",
          "A stream labelled with the wrong rate sounds wrong.", "Its length would be eight per cent off."]
SPOKEN_TEXT = " ".join(SPOKEN)

# Piper draws every phoneme's duration at random, so renders of one text differ in length. A length check
# holds the audio a client handed back against the mean of REFERENCE_RENDERS fresh renders of the same text,
# within RENDER_TOLERANCE: it catches a mislabelled rate (22.05 kHz audio labelled 24 kHz is 8.1 % short,
# the reverse 8.8 % long). Measured in process, 150 renders each (`python -m bench.piper_length_spread`,
# bench/results/piper-length-spread-cpu), the relative standard deviation s of one render's length is
# 0.88 % for SPOKEN_TEXT (9.8 s), but 2-4 % for one sentence ("Pipecat sends whole sentences to the
# gateway." 4.1 %, as short as 0.88 of its mean), which made one-sentence checks fail now and then.
# One render against the mean of k others differs with standard deviation s * sqrt(1 + 1/k): 0.94 % for
# k = 8. A 5 % tolerance is 5.3 of those: a correct stream fails one check with probability about 1e-7;
# a mislabelled one is 3.3 (8.1 %) or 4.1 (8.8 %) of them beyond it and passes with probability 4e-4 or 2e-5.
REFERENCE_RENDERS = 8
RENDER_TOLERANCE = 0.05
# The references of a text are rendered once per session: every module's gateway runs the same Piper.
_references: dict[str, float] = {}


def assert_render_length(seconds: float, expected: float) -> None:
    """`seconds` of audio is the length `expected` of the same text rendered again (see RENDER_TOLERANCE)."""
    assert abs(seconds - expected) / expected < RENDER_TOLERANCE, (seconds, expected, RENDER_TOLERANCE)


def wav_seconds(data: bytes) -> tuple[float, int]:
    """Duration and rate of a 16-bit mono WAV body, read from its chunks (a streamed WAV leaves its sizes
    open, so the data size is what follows the data chunk's header)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos, rate, channels, bits = 12, 0, 0, 0
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if tag == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
        elif tag == b"data":
            assert rate and channels == 1 and bits == 16
            return (len(data) - pos - 8) / 2 / rate, rate
        pos += 8 + size
    raise AssertionError("no data chunk")


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    with sf.SoundFile(io.BytesIO(data)) as f:
        return np.concatenate(list(f.blocks(blocksize=8192, dtype="float32"))), f.samplerate


def pcm16(data: bytes) -> np.ndarray:
    assert len(data) % 2 == 0, "s16le PCM has an even byte count"
    return np.frombuffer(data, dtype="<i2")


async def reference_seconds(compat, text: str = SPOKEN_TEXT) -> float:
    """The mean length of REFERENCE_RENDERS renders of `text` through the ElevenLabs HTTP route as pcm_22050,
    Piper's own rate (nothing resampled). Distinct seeds give distinct cache keys, so each is a new render.
    Kept for the session: every module's gateway runs the same Piper on the same Triton, and the renders
    cost about 2 s of CPU each."""
    import httpx

    if text not in _references:
        lengths = []
        async with httpx.AsyncClient(base_url=compat.base_url, headers={"xi-api-key": compat.api_key},
                                     timeout=120) as c:
            for i in range(REFERENCE_RENDERS):
                r = await c.post("/v1/text-to-speech/en-US-generic", params={"output_format": "pcm_22050"},
                                 json={"text": text, "seed": 1000 + i})
                assert r.status_code == 200, r.text
                lengths.append(len(r.content) // 2 / 22050)
        _references[text] = float(np.mean(lengths))
    return _references[text]


async def livekit_stream_words(tts, text: str) -> list:
    """Feed `text` to a LiveKit TTS plugin's stream() word by word, as an LLM's tokens arrive, and return
    the audio frames it yields; closes the stream and the plugin."""
    try:
        stream = tts.stream()
        for word in text.split(" "):
            stream.push_text(word + " ")
        stream.end_input()
        frames = [event.frame async for event in stream]
        await stream.aclose()
    finally:
        await tts.aclose()
    return frames
