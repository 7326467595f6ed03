"""The elevenlabs Python SDK (2.78) against the ElevenLabs-compatible HTTP API: convert, stream,
with-timestamps, voices and models, authenticated by xi-api-key."""

from __future__ import annotations

import base64

import pytest
from compat_helpers import decode_audio, pcm16, wav_seconds
from elevenlabs import VoiceSettings
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError

TEXT = "ElevenLabs clients speak to this gateway. Every character gets a time, in order."


@pytest.fixture(scope="module")
def client(compat):
    return AsyncElevenLabs(api_key=compat.api_key, base_url=compat.base_url)


async def _bytes(chunks) -> bytes:
    return b"".join([c async for c in chunks])


async def test_convert_pcm_and_wav_of_one_render_agree(client, compat):
    """A seeded cloned voice renders the same audio twice: pcm_16000 is 16 kHz s16le, ulaw_8000 one byte
    per 8 kHz sample."""
    common = {"text": "Sixteen thousand samples.", "model_id": "eleven_flash_v2_5", "seed": 4_000_000_007}
    pcm = await _bytes(client.text_to_speech.convert(compat.cloned_voice, output_format="pcm_16000", **common))
    wav = await _bytes(client.text_to_speech.convert(compat.cloned_voice, output_format="wav_16000", **common))
    ulaw = await _bytes(client.text_to_speech.convert(compat.cloned_voice, output_format="ulaw_8000", **common))
    seconds, rate = wav_seconds(wav)
    assert rate == 16000 and seconds > 0.1
    assert abs(pcm16(pcm).size / 16000 - seconds) / seconds < 0.01
    assert abs(len(ulaw) / 8000 - seconds) / seconds < 0.01


async def test_convert_default_mp3_with_settings(client):
    audio = await _bytes(client.text_to_speech.convert(
        "en-US-generic", text="The default format is MP3 at 44.1 kilohertz.", model_id="eleven_multilingual_v2",
        voice_settings=VoiceSettings(stability=0.5, similarity_boost=0.8, speed=1.1), previous_text="Before.",
        next_text="After.", apply_text_normalization="auto"))
    x, rate = decode_audio(audio)
    assert rate == 44100 and x.size / rate > 1.0


async def test_stream_arrives_in_pieces(client, compat):
    chunks = [c async for c in client.text_to_speech.stream(
        compat.cloned_voice, text="Streamed as it is made. Two sentences.", output_format="pcm_24000",
        model_id="eleven_flash_v2_5")]
    assert len(chunks) > 1 and pcm16(b"".join(chunks)).size > 2400


async def test_with_timestamps_aligns_every_character(client):
    r = await client.text_to_speech.convert_with_timestamps(
        "en-US-generic", text=TEXT, output_format="pcm_24000", model_id="eleven_flash_v2_5")
    audio_s = pcm16(base64.b64decode(r.audio_base_64)).size / 24000
    a = r.alignment
    assert "".join(a.characters) == TEXT
    assert len(a.character_start_times_seconds) == len(a.character_end_times_seconds) == len(TEXT)
    starts, ends = a.character_start_times_seconds, a.character_end_times_seconds
    assert all(s <= e for s, e in zip(starts, ends, strict=True))
    assert all(e0 <= s1 + 1e-6 for e0, s1 in zip(ends, starts[1:], strict=False))
    assert abs(ends[-1] - audio_s) < 0.01, (ends[-1], audio_s)
    # measured from the engine: the second sentence starts well after the first began
    assert starts[TEXT.index("Every")] > 0.3 * audio_s
    assert r.normalized_alignment.characters == a.characters


async def test_stream_with_timestamps(client):
    chunks = [c async for c in client.text_to_speech.stream_with_timestamps(
        "en-US-generic", text=TEXT, output_format="pcm_22050", model_id="eleven_flash_v2_5")]
    assert len(chunks) >= 2
    audio = b"".join(base64.b64decode(c.audio_base_64) for c in chunks)
    chars = [ch for c in chunks if c.alignment for ch in c.alignment.characters]
    ends = [e for c in chunks if c.alignment for e in c.alignment.character_end_times_seconds]
    assert "".join(chars) == TEXT
    assert ends == sorted(ends) and abs(ends[-1] - pcm16(audio).size / 22050) < 0.01


async def test_voices_and_models(client, compat):
    voices = (await client.voices.get_all()).voices
    by_id = {v.voice_id: v for v in voices}
    assert by_id[compat.cloned_voice].category == "cloned" and by_id["en-US-generic"].category == "premade"
    searched = await client.voices.search()
    assert compat.cloned_voice in {v.voice_id for v in searched.voices} and searched.has_more is False
    models = await client.models.list()
    assert {m.model_id for m in models} == {"piper", "xtts"} and all(m.can_do_text_to_speech for m in models)


async def test_errors(client, compat):
    with pytest.raises(ApiError) as missing:
        await _bytes(client.text_to_speech.convert("0b6f9c1e-5d1a-4f43-9a55-1d1a7a3f0c11", text="x"))
    assert missing.value.status_code == 404
    with pytest.raises(ApiError) as fmt:
        await _bytes(client.text_to_speech.convert("en-US-generic", text="x", output_format="pcm_11025"))
    assert fmt.value.status_code == 422
    wrong = AsyncElevenLabs(api_key="tts_wrong", base_url=compat.base_url)
    with pytest.raises(ApiError) as auth:
        await _bytes(wrong.text_to_speech.convert("en-US-generic", text="x"))
    assert auth.value.status_code == 401
