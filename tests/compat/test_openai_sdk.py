"""The OpenAI Python SDK (openai 3.51) against POST /v1/audio/speech."""

from __future__ import annotations

import base64
import json
import time

import httpx
import openai
import pytest
from compat_helpers import SPOKEN_TEXT, assert_render_length, decode_audio, pcm16, reference_seconds, wav_seconds
from gateway_helpers import ADMIN_TOKEN

from control_plane.services.voice_map import OPENAI_VOICES

LONG_TEXT = ("Streaming matters for voice agents. The first sentence should play while the rest is made. "
             "A caller hears the answer begin at once. Then the second part follows without a gap. "
             "Each sentence is synthesised in turn. The last one closes the answer.")


@pytest.fixture(scope="module")
def client(compat):
    return openai.AsyncOpenAI(base_url=compat.v1, api_key=compat.api_key, max_retries=0)


async def test_pcm_is_24khz_s16le(client, compat):
    """Piper speaks at 22.05 kHz; pcm must still be 24 kHz: as long as Piper's renders of the text at its own
    rate (random durations: see assert_render_length), where a 22.05 kHz stream labelled 24 kHz would be
    8.1 % short."""
    pcm = await (await client.audio.speech.create(model="tts-1", voice="alloy", input=SPOKEN_TEXT,
                                                   response_format="pcm")).aread()
    assert_render_length(pcm16(pcm).size / 24000, await reference_seconds(compat))


async def test_pcm_matches_the_wav_of_the_same_render_within_1_percent(client, compat):
    """One render as pcm and as WAV: a seeded (XTTS) voice gives the same audio twice."""
    extra = {"seed": 5}
    text = "Twenty four thousand samples a second."
    pcm = await (await client.audio.speech.create(model="tts-1", voice={"id": compat.cloned_voice}, input=text,
                                                   response_format="pcm", extra_body=extra)).aread()
    wav = await (await client.audio.speech.create(model="tts-1", voice={"id": compat.cloned_voice}, input=text,
                                                   response_format="wav", extra_body=extra)).aread()
    seconds, rate = wav_seconds(wav)
    assert rate == 24000 and seconds > 0.1
    assert abs(pcm16(pcm).size / 24000 - seconds) / seconds < 0.01


async def test_streamed_by_default(client):
    """with_streaming_response and no stream_format (as Pipecat calls it): bytes arrive while the rest
    is still being synthesised."""
    started = time.perf_counter()
    first: float | None = None
    total = 0
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="nova", input=LONG_TEXT, response_format="pcm") as r:
        assert r.headers["content-type"] == "audio/pcm"
        assert r.headers.get("transfer-encoding") == "chunked"
        async for chunk in r.iter_bytes():
            if chunk and first is None:
                first = time.perf_counter() - started
            total += len(chunk)
    elapsed = time.perf_counter() - started
    assert first is not None and total > 24000 * 2 * 3
    assert first < 0.4 * elapsed, (first, elapsed)


async def test_sse_events(client):
    text = "Server sent events carry the audio in pieces."
    plain = await (await client.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input=text,
                                                     response_format="pcm")).aread()
    events = []
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="coral", input=text, response_format="pcm", stream_format="sse") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and set(kinds[:-1]) == {"speech.audio.delta"} and len(kinds) >= 2
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert abs(len(audio) - len(plain)) <= 0.01 * len(plain)
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(text) and usage["total_tokens"] == usage["input_tokens"]


async def test_sse_mp3_decodes(client):
    chunks = []
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts-2025-12-15", voice="ash", input="An MP3 inside events.",
            stream_format="sse") as r:
        async for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "speech.audio.delta":
                    chunks.append(base64.b64decode(event["audio"]))
    x, rate = decode_audio(b"".join(chunks))
    assert rate == 24000 and x.size / rate > 0.5


@pytest.mark.parametrize("voice", OPENAI_VOICES)
async def test_every_openai_voice(client, voice):
    r = await client.audio.speech.with_raw_response.create(model="tts-1", voice=voice, input="Hello there.",
                                                            response_format="pcm")
    assert r.status_code == 200 and r.headers["x-sample-rate"] == "24000"
    assert pcm16(r.content).size > 24000 // 4


async def test_cloned_voice_by_id(client, compat):
    """A cloned (XTTS) voice through {"id": ...}, streamed: the bytes are the cached render's, byte for byte."""
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice={"id": compat.cloned_voice}, input="A cloned voice.",
            response_format="pcm") as r:
        assert r.headers["x-engine"] == "xtts" and r.headers["x-sample-rate"] == "24000"
        streamed = b"".join([chunk async for chunk in r.iter_bytes()])
    again = await client.audio.speech.with_raw_response.create(
        model="gpt-4o-mini-tts", voice={"id": compat.cloned_voice}, input="A cloned voice.", response_format="pcm")
    assert again.headers["x-cache"] == "HIT" and again.content == streamed and pcm16(streamed).size > 2400


async def test_voice_map_routes_an_openai_name_to_a_cloned_voice(client, compat):
    async with compat.gateway.client(compat.api_key) as c:
        bad = await c.put("/v1/tenant/config", json={"voice_map": {"nova": "not-a-voice"}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_voice_map"
        bad = await c.put("/v1/tenant/config", json={"voice_map": {"gandalf": compat.cloned_voice}})
        assert bad.status_code == 422
        r = await c.put("/v1/tenant/config", json={"voice_map": {"Nova": compat.cloned_voice}})
        assert r.status_code == 200 and r.json()["voice_map"] == {"nova": compat.cloned_voice}
        assert (await c.get("/v1/tenant/config")).json()["voice_map"] == {"nova": compat.cloned_voice}
    try:
        mapped = await client.audio.speech.with_raw_response.create(model="tts-1", voice="nova", input="Mapped.",
                                                                     response_format="pcm")
        unmapped = await client.audio.speech.with_raw_response.create(model="tts-1", voice="echo",
                                                                       input="Mapped.", response_format="pcm")
        assert mapped.headers["x-engine"] == "xtts" and unmapped.headers["x-engine"] == "piper"
        assert pcm16(mapped.content).size > 0
    finally:
        async with httpx.AsyncClient(base_url=compat.base_url,
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
            r = await admin.patch(f"/admin/v1/tenants/{compat.tenant_id}", json={"voice_map": {}})
            assert r.status_code == 200 and r.json()["voice_map"] == {}
    r = await client.audio.speech.with_raw_response.create(model="tts-1", voice="nova", input="Mapped.",
                                                            response_format="pcm")
    assert r.headers["x-engine"] == "piper"


async def test_admin_sets_the_voice_map(compat):
    async with httpx.AsyncClient(base_url=compat.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        ok = await c.patch(f"/admin/v1/tenants/{compat.tenant_id}", json={"voice_map": {"onyx": compat.cloned_voice}})
        other_id, _ = await compat.gateway.tenant()
        foreign = await c.patch(f"/admin/v1/tenants/{other_id}", json={"voice_map": {"onyx": compat.cloned_voice}})
        cleared = await c.patch(f"/admin/v1/tenants/{compat.tenant_id}", json={"voice_map": {}})
    assert ok.status_code == 200 and ok.json()["voice_map"] == {"onyx": compat.cloned_voice}
    assert foreign.status_code == 422  # another tenant's voice
    assert cleared.json()["voice_map"] == {}


async def test_errors_raise_the_sdk_exceptions(client, compat):
    with pytest.raises(openai.BadRequestError) as bad:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="x", response_format="aac")
    assert bad.value.code == "unsupported_format" and bad.value.param == "response_format"
    assert bad.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as empty:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="")
    assert empty.value.param == "input"
    with pytest.raises(openai.BadRequestError):
        await client.audio.speech.create(model="dall-e-3", voice="alloy", input="x")
    with pytest.raises(openai.NotFoundError):
        await client.audio.speech.create(model="tts-1", voice={"id": "0b6f9c1e-5d1a-4f43-9a55-1d1a7a3f0c11"},
                                         input="x")
    wrong = openai.AsyncOpenAI(base_url=compat.v1, api_key="tts_wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        await wrong.audio.speech.create(model="tts-1", voice="alloy", input="x")
    assert auth.value.type == "authentication_error"
