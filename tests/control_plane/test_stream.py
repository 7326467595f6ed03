"""POST /v1/synthesize/stream on a real HTTP server: chunks on the wire, cache hits, disconnect cancels."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest
from gateway_helpers import decode, run_gateway, settled_triton_counter, triton_counter


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-stream"), triton_piper) as gw:
        yield gw


@pytest.fixture(scope="module")
async def tenant_key(gateway):
    return (await gateway.tenant())[1]


async def _chunks(c, body):
    async with c.stream("POST", "/v1/synthesize/stream", json=body) as r:
        assert r.status_code == 200, await r.aread()
        return r, [chunk async for chunk in r.aiter_raw()]


async def _wire_chunks(url: str, key: str, body: dict) -> tuple[bytes, list[bytes]]:
    """POST over a raw socket and return the response head and its HTTP/1.1 chunks exactly as framed."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    payload = json.dumps(body).encode()
    writer.write(b"POST /v1/synthesize/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {key}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            break
        chunks.append(data[:-2])
    writer.close()
    return head, chunks


async def test_stream_honours_chunk_size_and_streams_wav(gateway, tenant_key):
    text = "First sentence of the stream. Second sentence follows. And a third one."
    head, chunks = await _wire_chunks(gateway.url, tenant_key, {"text": text, "format": "wav", "chunk_size": 4096})
    assert b" 200 " in head.split(b"\r\n")[0] and b"transfer-encoding: chunked" in head.lower()
    assert b"content-type: audio/wav" in head.lower() and b"x-cache: MISS" in head
    assert len(chunks) > 5
    assert all(len(ch) == 4096 for ch in chunks[:-1]) and 0 < len(chunks[-1]) <= 4096
    data = b"".join(chunks)
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF  # open-length header
    x, rate = decode(data)
    assert rate == 22050 and x.size / rate > 2.0


async def test_stream_chunk_delay_and_cache_hit(gateway, tenant_key):
    body = {"text": "Streamed twice.", "format": "pcm", "chunk_size": 8192, "chunk_delay": 50}
    async with gateway.client(tenant_key) as c:
        r1, first = await _chunks(c, body)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r2, second = await _chunks(c, body)
        elapsed = loop.time() - t0
        whole = await c.post("/v1/synthesize", json={"text": "Streamed twice.", "format": "pcm"})
    assert r1.headers["x-cache"] == "MISS" and r2.headers["x-cache"] == "HIT"
    assert b"".join(first) == b"".join(second) == whole.content  # the whole-body endpoint shares the entry
    assert whole.headers["x-cache"] == "HIT"
    assert elapsed >= 0.05 * (len(second) - 1)


async def test_streamed_mp3_decodes(gateway, tenant_key):
    async with gateway.client(tenant_key) as c:
        _, chunks = await _chunks(c, {"text": "An MP3 stream. Two sentences.", "format": "mp3"})
    x, rate = decode(b"".join(chunks))
    assert rate == 22050 and x.size / rate > 1.0


async def test_client_disconnect_stops_triton_work(gateway, tenant_key, triton_piper):
    metrics = triton_piper.metrics_url
    text = " ".join(f"This is sentence number {i} of a long story." for i in range(60))
    before = await settled_triton_counter(metrics, "tts_requests_total", model="piper")
    async with gateway.client(tenant_key) as c, c.stream("POST", "/v1/synthesize/stream",
                                                        json={"text": text, "format": "pcm"}) as r:
        async for _ in r.aiter_raw():
            break  # first audio, then hang up
    settled = await settled_triton_counter(metrics, "tts_requests_total", model="piper")
    await asyncio.sleep(1.0)
    # Each sentence is one Triton request; after the hang-up no new ones start (at most the one
    # in flight and the one prefetched finish or are cancelled), where the full text would need 60.
    assert settled - before <= 4
    assert await triton_counter(metrics, "tts_requests_total", model="piper") == settled
    assert await triton_counter(metrics, "tts_model_active_requests", model="piper") == 0
