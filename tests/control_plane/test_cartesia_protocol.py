"""The Cartesia translation's pure parts: bodies, speeds, encodings, and Cartesia keys in the voice map."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from control_plane.api.cartesia_protocol import CancelMessage, TTSBody, parse_message, wav_file
from control_plane.api.raw_audio import RawConverter
from control_plane.errors import InvalidInput
from control_plane.services import audio as A
from control_plane.services.voice_map import check_voice_map


def _pcm(n: int = 1000) -> bytes:
    t = np.arange(n) / 16000
    return A.to_int16(0.5 * np.sin(2 * np.pi * 440 * t)).tobytes()


def test_converter_keeps_samples_whole_across_odd_chunks():
    data = _pcm()
    whole = RawConverter("pcm_f32le").convert(data)
    conv = RawConverter("pcm_f32le")
    pieces = b"".join(conv.convert(data[i:i + 333]) for i in range(0, len(data), 333))
    assert pieces == whole and len(whole) == len(data) * 2
    assert np.allclose(np.frombuffer(whole, "<f4"), np.frombuffer(data, "<i2") / 32768.0)
    assert RawConverter("pcm_s16le").convert(data) is data
    assert RawConverter("pcm_mulaw").convert(data) == A.mulaw_encode(np.frombuffer(data, "<i2"))
    assert RawConverter("pcm_alaw").convert(data) == A.alaw_encode(np.frombuffer(data, "<i2"))


@pytest.mark.parametrize(("encoding", "subtype"), [("pcm_s16le", "PCM_16"), ("pcm_f32le", "FLOAT"),
                                                   ("pcm_mulaw", "ULAW"), ("pcm_alaw", "ALAW")])
def test_wav_file_in_each_encoding(encoding, subtype):
    info = sf.info(io.BytesIO(wav_file(_pcm(), 16000, encoding)))
    assert (info.samplerate, info.frames, info.subtype) == (16000, 1000, subtype)


def test_speeds_volume_and_tags():
    body = TTSBody(transcript='<emotion value="sad"/>Hi <break time="1s"/>there', speed="fast")
    assert body.our_speed == 1.25 and body.text.split() == ["Hi", "there"]
    assert TTSBody(transcript="x", generation_config={"speed": 3.0, "volume": 0.5}).our_speed == 2.0
    assert TTSBody(transcript="x", generation_config={"volume": 0.5}).our_volume == 0.5
    old = TTSBody.model_validate({"transcript": "x", "voice": {"mode": "id", "id": "v",
                                                               "__experimental_controls": {"speed": -1.0}}})
    assert old.our_speed == 0.5 and old.voice_id == "v"
    assert TTSBody(transcript="x", voice=" v2 ").voice_id == "v2"
    assert TTSBody(transcript="x", locale="de-DE").our_language == "de"
    with pytest.raises(InvalidInput):
        _ = TTSBody(transcript="x", speed="warp").our_speed
    with pytest.raises(InvalidInput):
        _ = TTSBody(transcript="x", voice={"mode": "embedding", "embedding": [0.1]}).voice_id


def test_socket_messages():
    assert isinstance(parse_message({"context_id": "a", "cancel": True}), CancelMessage)
    msg = parse_message({"context_id": "a", "transcript": "Hi", "continue": True, "max_buffer_delay_ms": 0})
    assert isinstance(msg, TTSBody) and msg.continue_ and msg.max_buffer_delay_ms == 0
    with pytest.raises(InvalidInput, match="context_id"):
        parse_message({"transcript": "Hi"})
    with pytest.raises(InvalidInput):
        parse_message({"context_id": "a", "transcript": "Hi", "max_buffer_delay_ms": 9000})
    with pytest.raises(InvalidInput):
        parse_message(["not", "an", "object"])


def test_voice_map_takes_cartesia_voice_ids():
    checked = check_voice_map({"Cartesia:F786B574-daa5-4673-aa0c-cbe3e8534c02": "v1", "nova": "v2"})
    assert checked == {"cartesia:f786b574-daa5-4673-aa0c-cbe3e8534c02": "v1", "nova": "v2"}
    for bad in ("cartesia:", "cartesia:has space", "elsewhere:abc", "gandalf"):
        with pytest.raises(InvalidInput):
            check_voice_map({bad: "v1"})
