"""LiveKit Agents' elevenlabs.TTS (livekit-plugins-elevenlabs 1.8.9). One-shot: `synthesize()` posts to
/v1/text-to-speech/{voice_id}/stream with the xi-api-key header and decodes output_format's codec at
the rate its name says (mp3_22050_32 by default). Streamed: `stream()` over WS /multi-stream-input."""

from __future__ import annotations

import aiohttp
import pytest
from compat_helpers import SPOKEN_TEXT, assert_render_length, livekit_stream_words, reference_seconds
from livekit.plugins import elevenlabs


@pytest.mark.parametrize("encoding", ["mp3_22050_32", "pcm_16000", "pcm_24000"])
async def test_livekit_elevenlabs_one_shot(compat, encoding):
    rate = int(encoding.split("_")[1])
    async with aiohttp.ClientSession() as session:
        tts = elevenlabs.TTS(voice_id="en-US-generic", api_key=compat.api_key, base_url=compat.v1,
                             encoding=encoding, http_session=session)
        try:
            frames = [event.frame async for event in tts.synthesize("LiveKit speaks through the gateway.")]
        finally:
            await tts.aclose()
    assert frames and {f.sample_rate for f in frames} == {rate} and {f.num_channels for f in frames} == {1}
    seconds = sum(f.samples_per_channel for f in frames) / rate
    assert 1.0 < seconds < 4.0, seconds


async def test_livekit_elevenlabs_cloned_voice(compat):
    async with aiohttp.ClientSession() as session:
        tts = elevenlabs.TTS(voice_id=compat.cloned_voice, api_key=compat.api_key, base_url=compat.v1,
                             encoding="pcm_24000", http_session=session)
        try:
            frames = [event.frame async for event in tts.synthesize("A cloned voice.")]
        finally:
            await tts.aclose()
    assert frames and frames[0].sample_rate == 24000
    assert sum(f.samples_per_channel for f in frames) > 2400


@pytest.mark.parametrize("encoding", ["pcm_16000", "pcm_24000"])
async def test_livekit_elevenlabs_stream_word_by_word(compat, encoding):
    """`stream()` speaks WS /multi-stream-input: context init, sentences with flush (auto_mode), then an
    empty flush and close_context; it ends when isFinal comes."""
    rate = int(encoding.split("_")[1])
    async with aiohttp.ClientSession() as session:
        tts = elevenlabs.TTS(voice_id="en-US-generic", api_key=compat.api_key, base_url=compat.v1,
                             encoding=encoding, http_session=session)
        frames = await livekit_stream_words(tts, SPOKEN_TEXT)
    assert frames and {f.sample_rate for f in frames} == {rate} and {f.num_channels for f in frames} == {1}
    assert_render_length(sum(f.samples_per_channel for f in frames) / rate, await reference_seconds(compat))
