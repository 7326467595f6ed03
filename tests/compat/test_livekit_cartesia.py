"""LiveKit Agents' cartesia.TTS (livekit-plugins-cartesia 1.8.9). One-shot: `synthesize()` posts to /tts/bytes
with X-API-Key and Cartesia-Version and reads raw pcm_s16le at its sample_rate. Streamed: `stream()` over
WS /tts/websocket, one context per stream: each sentence of its tokenizer with `continue: true` and
`max_buffer_delay_ms: 0`, then " " with `continue: false`; it ends at `done` and aligns the transcript from
the `timestamps` messages."""

from __future__ import annotations

import aiohttp
import pytest
from compat_helpers import SPOKEN_TEXT, assert_render_length, livekit_stream_words, reference_seconds
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.plugins import cartesia

TEXT = "LiveKit speaks through the gateway."


@pytest.mark.parametrize("rate", [16000, 24000, 44100])
async def test_livekit_cartesia_one_shot(compat, rate):
    async with aiohttp.ClientSession() as session:
        tts = cartesia.TTS(api_key=compat.api_key, base_url=compat.base_url, voice="en-US-generic",
                           sample_rate=rate, http_session=session)
        try:
            frames = [event.frame async for event in tts.synthesize(SPOKEN_TEXT)]
        finally:
            await tts.aclose()
    assert frames and {f.sample_rate for f in frames} == {rate} and {f.num_channels for f in frames} == {1}
    assert_render_length(sum(f.samples_per_channel for f in frames) / rate, await reference_seconds(compat))


async def test_livekit_cartesia_one_shot_with_its_stock_voice_and_a_cloned_one(compat):
    async with aiohttp.ClientSession() as session:
        stock = cartesia.TTS(api_key=compat.api_key, base_url=compat.base_url, http_session=session)
        cloned = cartesia.TTS(api_key=compat.api_key, base_url=compat.base_url, voice=compat.cloned_voice,
                              http_session=session)
        try:
            default = [e.frame async for e in stock.synthesize(TEXT)]  # the plugin's default Cartesia voice id
            own = [e.frame async for e in cloned.synthesize("A cloned voice.")]
        finally:
            await stock.aclose()
            await cloned.aclose()
    assert sum(f.samples_per_channel for f in default) / 24000 > 1.0
    assert own[0].sample_rate == 24000 and sum(f.samples_per_channel for f in own) > 2400


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_livekit_cartesia_stream_word_by_word_with_aligned_words(compat, rate):
    async with aiohttp.ClientSession() as session:
        tts = cartesia.TTS(api_key=compat.api_key, base_url=compat.base_url, voice="en-US-generic",
                           sample_rate=rate, http_session=session)
        frames = await livekit_stream_words(tts, SPOKEN_TEXT)
    assert frames and {f.sample_rate for f in frames} == {rate} and {f.num_channels for f in frames} == {1}
    seconds = sum(f.samples_per_channel for f in frames) / rate
    assert_render_length(seconds, await reference_seconds(compat))
    timed = [w for f in frames for w in f.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]
    assert [w.strip() for w in timed if w.strip()] == SPOKEN_TEXT.split(), timed
    starts = [w.start_time for w in timed if w.strip()]
    assert starts == sorted(starts) and all(w.start_time < w.end_time <= seconds + 0.01 for w in timed if w.strip())
