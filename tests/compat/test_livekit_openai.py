"""LiveKit Agents' openai.TTS (livekit-plugins-openai 1.8.9) against POST /v1/audio/speech.

tts-1 asks for stream_format "audio"; the default model gpt-4o-mini-tts asks for "sse" and decodes
the events' audio as audio/<response_format> (mp3 by default) at 24 kHz."""

from __future__ import annotations

import pytest
from compat_helpers import openai_seconds
from livekit.plugins import openai

TEXT = "LiveKit agents decode this speech at twenty four kilohertz. It arrives as it is made."



# Piper draws random durations (one render against the mean of three: about 2.3 % standard deviation);
# MP3 decoding adds the encoder's priming and padding. A 22.05 kHz stream decoded as 24 kHz would be
# 8.8 % short: the window is one-sided below.
@pytest.mark.parametrize(("model", "response_format"), [
    ("tts-1", "pcm"),
    ("tts-1", "mp3"),
    ("gpt-4o-mini-tts", "mp3"),  # the plugin's defaults: SSE events carrying MP3
    ("gpt-4o-mini-tts", "pcm"),
])
async def test_livekit_openai_tts(compat, model, response_format):
    tts = openai.TTS(base_url=compat.v1, api_key=compat.api_key, model=model, voice="ash",
                     response_format=response_format)
    frames = []
    try:
        async for event in tts.synthesize(TEXT):
            frames.append(event.frame)
    finally:
        await tts.aclose()
    assert frames and {f.sample_rate for f in frames} == {24000} and {f.num_channels for f in frames} == {1}
    seconds = sum(f.samples_per_channel for f in frames) / 24000
    expected = await openai_seconds(compat, "ash", TEXT)
    assert -0.075 < (seconds - expected) / expected < 0.10, (seconds, expected)


async def test_livekit_openai_tts_default_model(compat):
    """Nothing but base_url and api_key: the plugin's own defaults (gpt-4o-mini-tts, SSE, mp3)."""
    tts = openai.TTS(base_url=compat.v1, api_key=compat.api_key)
    try:
        frames = [event.frame async for event in tts.synthesize("Default settings.")]
    finally:
        await tts.aclose()
    assert frames and frames[0].sample_rate == 24000
    assert sum(f.samples_per_channel for f in frames) / 24000 > 0.3
