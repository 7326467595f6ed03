"""The `cartesia` Python SDK (4.2) against the HTTP forms: `tts.generate` (/tts/bytes, Bearer key, its own
Cartesia-Version) in raw and WAV, `tts.generate_sse` (/tts/sse) with word timestamps parsed into the SDK's
event types, and the SDK's exceptions for refusals."""

from __future__ import annotations

import io

import cartesia
import numpy as np
import pytest
import soundfile as sf
from cartesia.types.tts_sse_event import TTSSSEChunkEvent, TTSSSEDoneEvent, TTSSSETimestampsEvent
from compat_helpers import SPOKEN_TEXT, assert_render_length, pcm16, reference_seconds

TEXT = "The Cartesia SDK speaks through the gateway."


@pytest.fixture
async def client(compat):
    c = cartesia.AsyncCartesia(api_key=compat.api_key, base_url=compat.base_url, max_retries=0, timeout=120)
    yield c
    await c.close()


async def test_generate_raw_and_wav(client, compat):
    raw = await client.tts.generate(model_id="sonic-3", transcript=SPOKEN_TEXT, voice={"id": "en-US-generic"},
                                    output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
                                    language="en")
    samples = pcm16(await raw.read())
    wav = await client.tts.generate(model_id="sonic-3", transcript=SPOKEN_TEXT, voice="en-US-generic",
                                    output_format={"container": "wav", "encoding": "pcm_f32le", "sample_rate": 16000})
    x, rate = sf.read(io.BytesIO(await wav.read()), dtype="float32")
    assert_render_length(samples.size / 16000, await reference_seconds(compat))
    assert rate == 16000 and x.size == samples.size and np.allclose(x, samples / 32768.0, atol=1e-6)


async def test_generate_sse_with_timestamps(client, compat):
    stream = await client.tts.generate_sse(
        model_id="sonic-3", transcript=SPOKEN_TEXT, voice={"id": "en-US-generic"}, add_timestamps=True,
        context_id="sdk-1", output_format={"container": "raw", "encoding": "pcm_f32le", "sample_rate": 24000})
    events = [event async for event in stream]
    assert isinstance(events[-1], TTSSSEDoneEvent) and events[-1].context_id == "sdk-1"
    audio = b"".join(e.audio or b"" for e in events if isinstance(e, TTSSSEChunkEvent))
    assert_render_length(len(audio) / 4 / 24000, await reference_seconds(compat))
    words = [w for e in events if isinstance(e, TTSSSETimestampsEvent) for w in e.word_timestamps.words]
    assert words == SPOKEN_TEXT.split()


async def test_refusals_raise_the_sdk_exceptions(client, compat):
    with pytest.raises(cartesia.BadRequestError) as bad:
        await client.tts.generate(model_id="sonic-3", transcript=TEXT, voice="en-US-generic",
                                  output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 11025})
    assert bad.value.status_code == 400
    unauthorized = cartesia.AsyncCartesia(api_key="not-a-key", base_url=compat.base_url, max_retries=0)
    try:
        with pytest.raises(cartesia.AuthenticationError):
            await unauthorized.tts.generate(model_id="sonic-3", transcript=TEXT, voice="en-US-generic",
                                            output_format={"container": "raw", "encoding": "pcm_s16le",
                                                           "sample_rate": 16000})
    finally:
        await unauthorized.close()
