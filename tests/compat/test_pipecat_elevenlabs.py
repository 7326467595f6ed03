"""Pipecat's ElevenLabsTTSService (pipecat-ai 1.14) in a real Pipeline against WS /multi-stream-input.

The service opens one context per utterance ({"text": " "} with voice_settings), sends the text,
ends the turn with {"flush": true} and then close_context, and waits for isFinal: the gateway must
speak the whole flushed turn (close_context after a flush is not barge-in), as pcm at the pipeline's
rate, streamed."""

from __future__ import annotations

from compat_helpers import SPOKEN_TEXT, assert_render_length, pcm16, reference_seconds
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
from pipecat_helpers import PATIENT, speak


def _service(compat, voice: str) -> ElevenLabsTTSService:
    return ElevenLabsTTSService(api_key=compat.api_key, url=compat.base_url.replace("http", "ws", 1),
                                settings=ElevenLabsTTSService.Settings(voice=voice), **PATIENT)


async def test_elevenlabs_tts_service_in_a_pipeline(compat):
    spoken = await speak(_service(compat, "en-US-generic"), [SPOKEN_TEXT], sample_rate=24000)
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {24000}
    # the whole turn, at 24 kHz (Piper renders 22.05 kHz: unresampled audio labelled 24 kHz is 8.1 % short)
    assert_render_length(pcm16(spoken.audio).size / 24000, await reference_seconds(compat))
    # streamed: a message per engine chunk (at least one per sentence), the first before the last sentence
    # was synthesised
    assert len(spoken.frames) >= 3
    assert spoken.arrivals[-1] - spoken.arrivals[0] > 0.2, (spoken.arrivals[0], spoken.arrivals[-1])


async def test_elevenlabs_tts_service_speaks_a_cloned_voice_turn_after_turn(compat):
    spoken = await speak(_service(compat, compat.cloned_voice),
                         ["A cloned voice, through ElevenLabs' socket.", "And a second turn, a new context."],
                         sample_rate=16000)
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {16000} and len(spoken.frames) > 1
    assert pcm16(spoken.audio).size / 16000 > 0.4
