"""POST /v1/speak as Deepgram's clients use it: LiveKit's deepgram.TTS one-shot (livekit-plugins-deepgram
1.8.9: `container=none`, `Authorization: Token`, the audio labelled with the rate it asked for), the
deepgram-sdk 7.17 (`speak.v1.audio.generate`, mp3 by default), Pipecat's DeepgramHttpTTSService, the
tenant's map of Aura model names, and refusals in Deepgram's error shape."""

from __future__ import annotations

import aiohttp
import httpx
import numpy as np
import pytest
from compat_helpers import SPOKEN_TEXT, assert_render_length, decode_audio, pcm16, reference_seconds, wav_seconds
from livekit.plugins import deepgram as lk_deepgram


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_livekit_deepgram_one_shot(compat, rate):
    async with aiohttp.ClientSession() as session:
        tts = lk_deepgram.TTS(api_key=compat.api_key, base_url=f"{compat.v1}/speak", sample_rate=rate,
                              http_session=session)
        try:
            frames = [event.frame async for event in tts.synthesize(SPOKEN_TEXT)]
        finally:
            await tts.aclose()
    assert frames and {f.sample_rate for f in frames} == {rate} and {f.num_channels for f in frames} == {1}
    assert_render_length(sum(f.samples_per_channel for f in frames) / rate, await reference_seconds(compat))


def _sdk(compat):
    from deepgram import AsyncDeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    env = DeepgramClientEnvironment(base=compat.base_url, production=compat.base_url.replace("http", "ws", 1),
                                    agent=compat.base_url, agent_rest=compat.base_url)
    return AsyncDeepgramClient(api_key=compat.api_key, environment=env)


async def test_deepgram_sdk_default_is_mp3(compat):
    client = _sdk(compat)
    audio = b"".join([chunk async for chunk in client.speak.v1.audio.generate(text="The SDK asks for speech.")])
    samples, rate = decode_audio(audio)
    assert audio[:3] == b"ID3" or audio[0] == 0xFF
    assert rate == 22050 and 1.0 < samples.size / rate < 4.0


async def test_deepgram_sdk_linear16_in_wav_and_raw(compat):
    client = _sdk(compat)
    async with client.speak.v1.audio.with_raw_response.generate(
            text="Sixteen bit samples.", model="aura-2-thalia-en", encoding="linear16", sample_rate=16000) as r:
        assert r.headers["content-type"] == "audio/wav"
        assert r.headers["dg-model-name"] == "aura-2-thalia-en" and r.headers["dg-char-count"] == "20"
        assert r.headers["dg-request-id"] and r.headers["dg-model-uuid"]
        assert wav_seconds(b"".join([chunk async for chunk in r.data]))[1] == 16000
    # the same text as WAV and raw: two renders, each held against the reference renders
    wav = b"".join([chunk async for chunk in client.speak.v1.audio.generate(
        text=SPOKEN_TEXT, encoding="linear16", sample_rate=16000)])
    raw = b"".join([chunk async for chunk in client.speak.v1.audio.generate(
        text=SPOKEN_TEXT, encoding="linear16", sample_rate=16000, container="none")])
    seconds, rate = wav_seconds(wav)
    assert rate == 16000
    expected = await reference_seconds(compat)
    assert_render_length(seconds, expected)
    assert_render_length(pcm16(raw).size / 16000, expected)


@pytest.mark.parametrize(("encoding", "container", "rate"), [("mulaw", None, 8000), ("alaw", "none", 8000),
                                                             ("opus", "ogg", 48000), ("flac", None, 16000)])
async def test_encodings_at_their_rates(compat, encoding, container, rate):
    client = _sdk(compat)
    kwargs = {"container": container} if container else {}
    audio = b"".join([chunk async for chunk in client.speak.v1.audio.generate(
        text="Telephony and files.", encoding=encoding, sample_rate=rate, **kwargs)])
    if encoding in ("mulaw", "alaw"):
        seconds = len(audio) / 8000  # one byte a sample
    elif encoding == "flac":  # streamed FLAC leaves its length open, which libsndfile will not read back
        assert audio[:4] == b"fLaC" and int.from_bytes(audio[18:21], "big") >> 4 == rate
        seconds = 1.0
    else:
        samples, got = decode_audio(audio)
        assert got == rate
        seconds = samples.size / rate
    assert 0.8 < seconds < 4.0, seconds


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
async def test_g711_at_16k_is_speech_at_that_rate(compat, encoding):
    """One byte a sample at 16 kHz: the same words take twice the bytes of 8 kHz, and decode to speech."""
    from control_plane.services import audio as A

    client = _sdk(compat)
    text = "Telephony at sixteen kilohertz."
    sizes = {}
    for rate in (8000, 16000):
        audio = b"".join([chunk async for chunk in client.speak.v1.audio.generate(
            text=text, encoding=encoding, sample_rate=rate)])
        sizes[rate] = len(audio)
    # two renders, each drawing its durations: their ratio has a 2.7 % standard deviation (this text: 1.9 %
    # each, bench.piper_length_spread), so 20 % either way is 7 of them, and 1 or 2.76 (an 8 or 22.05 kHz
    # stream) is far outside
    assert 1.6 < sizes[16000] / sizes[8000] < 2.4, sizes
    decoded = (A.mulaw_decode if encoding == "mulaw" else A.alaw_decode)(audio)
    assert np.abs(decoded.astype(np.int32)).max() > 1000  # speech, not silence


async def test_pipecat_deepgram_http_service(compat):
    from pipecat.services.deepgram.tts import DeepgramHttpTTSService
    from pipecat_helpers import PATIENT, speak

    async with aiohttp.ClientSession() as session:
        tts = DeepgramHttpTTSService(api_key=compat.api_key, aiohttp_session=session, base_url=compat.base_url,
                                     **PATIENT)
        spoken = await speak(tts, [SPOKEN_TEXT], sample_rate=16000)
    assert not spoken.errors, spoken.errors
    assert spoken.sample_rates == {16000}
    assert_render_length(pcm16(spoken.audio).size / 16000, await reference_seconds(compat))


async def test_aura_model_names_go_through_the_voice_map(compat):
    headers = {"Authorization": f"Token {compat.api_key}"}
    params = {"model": "aura-2-orion-en", "encoding": "linear16", "container": "none", "sample_rate": 24000}
    async with httpx.AsyncClient(base_url=compat.base_url, headers=headers, timeout=120) as c:
        before = await c.post("/v1/speak", params=params, json={"text": "Mapped."})
        assert before.status_code == 200 and before.headers["x-engine"] == "piper"  # unmapped: the default voice
        bad = await c.put("/v1/tenant/config", json={"voice_map": {"aura-2-orion-xx-yy": compat.cloned_voice}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_voice_map"
        r = await c.put("/v1/tenant/config", json={"voice_map": {"Aura-2-Orion-EN": compat.cloned_voice}})
        assert r.status_code == 200 and r.json()["voice_map"] == {"aura-2-orion-en": compat.cloned_voice}
        try:
            after = await c.post("/v1/speak", params=params, json={"text": "Mapped."})
            assert after.status_code == 200 and after.headers["x-engine"] == "xtts"
            assert pcm16(after.content).size > 2400
            other = await c.post("/v1/speak", params={**params, "model": "aura-2-thalia-en"}, json={"text": "Not."})
            assert other.headers["x-engine"] == "piper"
            direct = await c.post("/v1/speak", params={**params, "model": compat.cloned_voice}, json={"text": "Id."})
            assert direct.status_code == 200 and direct.headers["x-engine"] == "xtts"
        finally:
            await c.put("/v1/tenant/config", json={"voice_map": {}})


@pytest.mark.parametrize(("params", "body", "status", "err_code", "says"), [
    ({"encoding": "aac"}, {"text": "x"}, 400, "INVALID_QUERY_PARAMETER", "aac"),
    ({"encoding": "linear16", "container": "ogg"}, {"text": "x"}, 400, "INVALID_QUERY_PARAMETER", "container"),
    ({"encoding": "mulaw", "sample_rate": 24000}, {"text": "x"}, 400, "INVALID_QUERY_PARAMETER", "8000 or 16000"),
    ({"sample_rate": 4000}, {"text": "x"}, 400, "INVALID_QUERY_PARAMETER", "sample_rate"),
    ({"callback": "https://example.com/hook"}, {"text": "x"}, 400, "INVALID_QUERY_PARAMETER", "callback"),
    ({}, {"text": ""}, 400, "INVALID_REQUEST_BODY", "text"),
    ({}, {"text": "x" * 2001}, 400, "INVALID_REQUEST_BODY", "text"),
    ({}, {"words": "x"}, 400, "INVALID_REQUEST_BODY", "text"),
    ({"model": "no-such-voice"}, {"text": "x"}, 404, "NOT_FOUND", "voice"),
])
async def test_refusals_in_deepgram_shape(compat, params, body, status, err_code, says):
    async with httpx.AsyncClient(base_url=compat.base_url, timeout=60,
                                 headers={"Authorization": f"Token {compat.api_key}"}) as c:
        r = await c.post("/v1/speak", params=params, json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["err_code"] == err_code and says in err["err_msg"] and err["request_id"], err
    assert r.headers["dg-error"] == err["err_msg"]


async def test_bad_key_is_invalid_auth_for_the_sdk(compat):
    from deepgram.core.api_error import ApiError

    client = _sdk(compat)
    client_bad = type(client)(api_key="not-a-key", environment=client._client_wrapper.get_environment())
    with pytest.raises(ApiError) as caught:
        async for _ in client_bad.speak.v1.audio.generate(text="Who am I?"):
            pass
    assert caught.value.status_code == 401 and caught.value.body["err_code"] == "INVALID_AUTH"
    async with httpx.AsyncClient(base_url=compat.base_url, timeout=60) as c:
        r = await c.post("/v1/speak", json={"text": "x"})
    assert r.status_code == 401 and r.json()["err_code"] == "INVALID_AUTH"
