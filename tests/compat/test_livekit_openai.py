"""LiveKit Agents' openai.TTS (livekit-plugins-openai 1.8.9) against POST /v1/audio/speech.

tts-1 asks for stream_format "audio"; the default model gpt-4o-mini-tts asks for "sse" and decodes
the events' audio as audio/<response_format> (mp3 by default) at 24 kHz."""

from __future__ import annotations

import pytest
from compat_helpers import RENDER_TOLERANCE, SPOKEN_TEXT, reference_seconds
from livekit.plugins import openai

MP3_PADDING = 0.025  # the encoder's priming and padding, at most a few frames of 1152 samples



# Piper draws random durations (see compat_helpers.RENDER_TOLERANCE); MP3 decoding adds the encoder's
# priming and padding, so the window reaches further above. A 22.05 kHz stream decoded as 24 kHz would be
# 8.1 % short.
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
        async for event in tts.synthesize(SPOKEN_TEXT):
            frames.append(event.frame)
    finally:
        await tts.aclose()
    assert frames and {f.sample_rate for f in frames} == {24000} and {f.num_channels for f in frames} == {1}
    seconds = sum(f.samples_per_channel for f in frames) / 24000
    expected = await reference_seconds(compat)
    assert -RENDER_TOLERANCE < (seconds - expected) / expected < RENDER_TOLERANCE + MP3_PADDING, (seconds, expected)


async def test_livekit_openai_tts_default_model(compat):
    """Nothing but base_url and api_key: the plugin's own defaults (gpt-4o-mini-tts, SSE, mp3)."""
    tts = openai.TTS(base_url=compat.v1, api_key=compat.api_key)
    try:
        frames = [event.frame async for event in tts.synthesize("Default settings.")]
    finally:
        await tts.aclose()
    assert frames and frames[0].sample_rate == 24000
    assert sum(f.samples_per_channel for f in frames) / 24000 > 0.3
