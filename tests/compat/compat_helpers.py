"""Helpers of the compatibility tests: reading the audio the clients hand back."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

# Piper draws every phoneme's duration at random: one short sentence's length varies by about 2 %
# (standard deviation) from one render to the next. A length check compares one render with the mean of
# REFERENCE_RENDERS others, within RENDER_TOLERANCE: about three standard deviations of that difference,
# and still less than the 8.1 % / 8.8 % by which a 22.05 kHz stream labelled 24 kHz (or the reverse) is off.
REFERENCE_RENDERS = 3
RENDER_TOLERANCE = 0.075


def assert_render_length(seconds: float, expected: float, tolerance: float = RENDER_TOLERANCE) -> None:
    """`seconds` of audio is the length `expected` of the same text rendered again (see RENDER_TOLERANCE)."""
    assert abs(seconds - expected) / expected < tolerance, (seconds, expected, tolerance)


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


async def sentence_seconds(compat, voice: str, sentences: list[str], rate: int) -> float:
    """How long the gateway's HTTP ElevenLabs route renders the sentences as one text: what a socket that
    speaks the same sentences one by one should last (each is its own segment either way, and only the
    first sentence of each is cut short; Piper's durations vary by a few per cent)."""
    import httpx

    lengths = []
    async with httpx.AsyncClient(base_url=compat.base_url, headers={"xi-api-key": compat.api_key},
                                 timeout=120) as c:
        for i in range(REFERENCE_RENDERS):  # distinct cache keys (seed), so each is a new render
            r = await c.post(f"/v1/text-to-speech/{voice}", params={"output_format": f"pcm_{rate}"},
                             json={"text": " ".join(sentences), "seed": 1000 + i})
            assert r.status_code == 200, r.text
            lengths.append(len(r.content) // 2 / rate)
    return float(np.mean(lengths))


async def openai_seconds(compat, voice: str, text: str) -> float:
    """How long the gateway's OpenAI route renders `text` as 24 kHz WAV: the mean of REFERENCE_RENDERS
    renders (distinct seeds, so distinct cache keys and fresh random durations)."""
    import openai

    client = openai.AsyncOpenAI(base_url=compat.v1, api_key=compat.api_key, max_retries=0)
    lengths = []
    for i in range(REFERENCE_RENDERS):
        wav = await (await client.audio.speech.create(model="tts-1", voice=voice, input=text, response_format="wav",
                                                       extra_body={"seed": 2000 + i})).aread()
        seconds, rate = wav_seconds(wav)
        assert rate == 24000
        lengths.append(seconds)
    return float(np.mean(lengths))


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
