"""POST /v1/audio/speech: the OpenAI request shape, formats, refusals and streaming."""

from __future__ import annotations

import pytest
from gateway_helpers import decode, run_gateway


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-openai"), triton_piper) as gw:
        yield gw


@pytest.fixture(scope="module")
async def tenant_key(gateway):
    return (await gateway.tenant())[1]


async def test_openai_defaults_give_mp3(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        r = await c.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello world!", "voice": "alloy"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    x, rate = decode(r.content)
    assert x.size / rate > 0.5


@pytest.mark.parametrize("fmt", ["wav", "flac", "opus", "pcm"])
async def test_openai_formats(gateway, tenant_key, fmt):
    async with gateway.client(tenant_key) as c:
        r = await c.post("/v1/audio/speech", json={"model": "tts-1-hd", "input": "Format check.", "voice": "nova",
                                                    "response_format": fmt, "speed": 4.0})
    assert r.status_code == 200, r.text
    if fmt == "flac":  # streamed as OpenAI does: STREAMINFO leaves the length open (soundfile cannot read it)
        assert r.content[:4] == b"fLaC"
    elif fmt != "pcm":
        assert decode(r.content)[1] == 24000
    assert r.headers["x-characters"] == str(len("Format check."))


async def test_openai_refusals(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        aac = await c.post("/v1/audio/speech", json={"model": "tts-1", "input": "x", "voice": "alloy",
                                                      "response_format": "aac"})
        model = await c.post("/v1/audio/speech", json={"model": "dall-e", "input": "x", "voice": "alloy"})
        empty = await c.post("/v1/audio/speech", json={"model": "tts-1", "input": "", "voice": "alloy"})
        voice = await c.post("/v1/audio/speech", json={"model": "tts-1", "input": "x", "voice": {"name": "x"}})
    assert aac.status_code == 400 and aac.json()["error"]["code"] == "unsupported_format"
    assert aac.json()["error"]["type"] == "invalid_request_error" and aac.json()["error"]["param"] == "response_format"
    assert model.status_code == 400 and model.json()["error"]["param"] == "model"
    # OpenAI answers invalid parameters with 400 (the SDK's BadRequestError), naming the parameter
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "input"
    assert voice.status_code == 400 and voice.json()["error"]["param"].startswith("voice")


async def test_openai_streaming(gateway, tenant_key):
    async with gateway.client(tenant_key) as c, c.stream("POST", "/v1/audio/speech", json={
            "model": "tts-1", "input": "Streaming like the OpenAI client. Two sentences.", "voice": "echo",
            "response_format": "wav", "stream_format": "audio"}) as r:
        assert r.status_code == 200
        data = b"".join([chunk async for chunk in r.aiter_raw()])
    x, rate = decode(data)
    assert rate == 24000 and x.size / rate > 1.0
