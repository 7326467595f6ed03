"""Pipecat's OpenAITTSService (pipecat-ai 1.14) in a real Pipeline against POST /v1/audio/speech.

The service always asks for pcm, never sends stream_format, labels every chunk 24 kHz, and refuses
voices that are not OpenAI names: the gateway must answer 24 kHz pcm, streamed, and reach a cloned
voice through the tenant's voice map."""

from __future__ import annotations

import openai
from compat_helpers import SPOKEN_TEXT, assert_render_length, pcm16, reference_seconds
from pipecat.services.openai.tts import OpenAITTSService
from pipecat_helpers import PATIENT, speak

TEXT = SPOKEN_TEXT  # four sentences: long enough to see the stream arrive in pieces



async def test_openai_tts_service_in_a_pipeline(compat):
    tts = OpenAITTSService(api_key=compat.api_key, base_url=compat.v1,
                           settings=OpenAITTSService.Settings(model="tts-1", voice="shimmer"), **PATIENT)
    spoken = await speak(tts, [TEXT])
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {24000}
    # every byte the gateway produced (the same request again is the cached render)
    client = openai.AsyncOpenAI(base_url=compat.v1, api_key=compat.api_key, max_retries=0)
    again = await client.audio.speech.with_raw_response.create(model="tts-1", voice="shimmer", input=TEXT,
                                                                response_format="pcm")
    assert again.headers["x-cache"] == "HIT" and again.content == spoken.audio
    # at 24 kHz: as long as Piper's renders of the text (22.05 kHz labelled 24 kHz would be 8.1 % short)
    assert_render_length(pcm16(spoken.audio).size / 24000, await reference_seconds(compat))
    # streamed: the frames came out while later sentences were still being synthesised (a buffered answer
    # would hand Pipecat every frame within a few milliseconds)
    assert len(spoken.frames) > 10
    # A buffered body would deliver every frame within a millisecond or two; a streamed one spreads them
    # over the synthesis of its sentences, which takes tens of milliseconds even on a fast machine.
    assert spoken.arrivals[-1] - spoken.arrivals[0] > 0.05, (spoken.arrivals[0], spoken.arrivals[-1])


async def test_openai_tts_service_speaks_a_cloned_voice_through_the_voice_map(compat):
    async with compat.gateway.client(compat.api_key) as c:
        r = await c.put("/v1/tenant/config", json={"voice_map": {"fable": compat.cloned_voice}})
        assert r.status_code == 200
    try:
        tts = OpenAITTSService(api_key=compat.api_key, base_url=compat.v1,
                               settings=OpenAITTSService.Settings(model="gpt-4o-mini-tts", voice="fable"),
                               **PATIENT)
        spoken = await speak(tts, ["A cloned voice, reached by an OpenAI name."])
    finally:
        async with compat.gateway.client(compat.api_key) as c:
            await c.put("/v1/tenant/config", json={"voice_map": {}})
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {24000} and len(spoken.frames) > 1
    assert pcm16(spoken.audio).size / 24000 > 0.2
