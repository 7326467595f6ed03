"""The Triton adapter against a real server: piper streams, readiness, model info, cancellation, errors."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest

from control_plane.adapters.triton import (
    MODEL_INFO_TTL_S,
    TritonClient,
    TritonError,
    TritonUnavailable,
    parse_model_info,
)
from control_plane.settings import Settings


def _client(handle) -> TritonClient:
    return TritonClient(Settings(triton_grpc_url=handle.grpc_url, triton_http_url=handle.http_url,
                                 triton_metrics_url=handle.metrics_url, triton_request_timeout_s=60))


async def _gauge(client: TritonClient, name: str, model: str, **labels: str) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient() as http:
        text = (await http.get(client.settings.triton_metrics_url)).text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            wanted = {"model": model, **labels}
            if s.name == name and all(s.labels.get(k) == v for k, v in wanted.items()):
                return s.value
    return 0.0


async def test_piper_streams_one_chunk_per_sentence(triton_piper):
    client = _client(triton_piper)
    try:
        chunks = [c async for c in client.stream_piper("Hello there. This is the second sentence.")]
    finally:
        await client.close()
    assert len(chunks) == 2
    assert all(c.sample_rate == 22050 and c.samples.dtype == np.float32 for c in chunks)
    total = sum(c.samples.size for c in chunks) / 22050
    assert 1.0 < total < 8.0
    assert max(float(np.abs(c.samples).max()) for c in chunks) > 0.05


async def test_readiness_and_model_info(triton_piper):
    client = _client(triton_piper)
    try:
        assert await client.model_ready("piper")
        assert not await client.model_ready("no_such_model")
        info = await client.model_info()
    finally:
        await client.close()
    assert info["piper"].test_weights is False
    assert info["piper"].model_version


async def _gated_proxy(target: str, gate: asyncio.Event, listen_port: int = 0) -> tuple[asyncio.Server, str]:
    """A TCP proxy to `target` (host:port), listening on `listen_port`, that forwards nothing until `gate`
    is set."""
    host, port = target.split(":")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await gate.wait()
        up_r, up_w = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    server = await asyncio.start_server(serve, "127.0.0.1", listen_port)
    return server, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_stale_model_info_is_served_while_it_is_read_again(triton_piper):
    """Synthesis reads the model versions for every request: a stale value must not make it wait for Triton."""
    gate = asyncio.Event()
    metrics = triton_piper.metrics_url.removeprefix("http://")
    proxy, address = await _gated_proxy(metrics.split("/")[0], gate)
    client = TritonClient(Settings(triton_grpc_url=triton_piper.grpc_url, triton_http_url=triton_piper.http_url,
                                   triton_metrics_url=f"http://{address}/metrics", triton_request_timeout_s=60))
    try:
        gate.set()
        first = await client.model_info()  # nothing cached: this read is awaited
        assert first["piper"].model_version
        gate.clear()
        assert client._info_cache is not None
        aged = client._info_cache[0] - 3600
        client._info_cache = (aged, first)  # read an hour ago: past its TTL
        # The gate holds Triton's answer back: a caller that waited for the re-read would never return.
        stale = await asyncio.wait_for(client.model_info(), timeout=30)
        assert stale == first
        refresh = client._info_refresh
        assert refresh is not None and not refresh.done()  # one re-read under way, in the background
        assert await asyncio.wait_for(client.model_info(), timeout=30) == first
        assert client._info_refresh is refresh  # no second re-read while one runs
        gate.set()
        await asyncio.wait_for(refresh, timeout=30)
        assert client._info_cache[0] > aged + 3600 - MODEL_INFO_TTL_S  # read again just now
        assert (await client.model_info())["piper"].model_version == first["piper"].model_version
    finally:
        gate.set()
        await client.close()
        proxy.close()


async def test_stream_error_is_mapped(triton_piper):
    client = _client(triton_piper)
    try:
        with pytest.raises(TritonError):
            async for _ in client.stream_piper("   "):
                pass
        with pytest.raises(TritonUnavailable):
            async for _ in client._stream("no_such_model", [], ""):
                pass
    finally:
        await client.close()


async def test_unreachable_triton_is_unavailable():
    client = TritonClient(Settings(triton_grpc_url="127.0.0.1:9", triton_http_url="http://127.0.0.1:9",
                                   triton_metrics_url="http://127.0.0.1:9/metrics", triton_request_timeout_s=5))
    try:
        assert not await client.model_ready("piper")
        assert await client.model_info() == {}
        with pytest.raises(TritonUnavailable):
            async for _ in client.stream_piper("Hello."):
                pass
    finally:
        await client.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_not_ready_while_the_grpc_channel_waits_to_reconnect(triton_piper):
    """Triton back (HTTP answers ready) while the gRPC channel still waits out its reconnection backoff:
    a synthesis now would fail at once, so the replica must not say it is ready until the channel is."""
    port = _free_port()  # Triton's gRPC port while it is down: nothing listens there
    client = TritonClient(Settings(triton_grpc_url=f"127.0.0.1:{port}", triton_http_url=triton_piper.http_url,
                                   triton_metrics_url=triton_piper.metrics_url, triton_request_timeout_s=60))
    proxy = None
    try:
        with pytest.raises(TritonUnavailable):
            async for _ in client.stream_piper("Hello."):
                pass
        assert await client.model_ready("piper")  # HTTP says Triton is up ...
        assert client.grpc_reconnecting() and not await client.server_ready()  # ... synthesis cannot reach it
        gate = asyncio.Event()
        gate.set()
        proxy, _ = await _gated_proxy(triton_piper.grpc_url, gate, listen_port=port)  # Triton's gRPC "returns"
        await asyncio.wait_for(client.grpc._channel.channel_ready(), timeout=60)  # its next attempt connects
        assert await client.server_ready()
        chunks = [c async for c in client.stream_piper("Back again.")]  # and a synthesis gets through
        assert chunks and chunks[0].sample_rate == 22050
    finally:
        await client.close()
        if proxy is not None:
            proxy.close()


async def _wait_for_cancelled(client: TritonClient, before: float, within_s: float = 60.0) -> float:
    """The cancelled-requests counter once it is past `before` (the model applies it once a second)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while (now := await _gauge(client, "tts_requests_total", "piper", outcome="cancelled")) <= before:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    return now


LONG_TEXT = " ".join(f"This is sentence number {i} of a long text." for i in range(40))


async def test_leaving_the_stream_early_cancels_the_request(triton_piper):
    client = _client(triton_piper)
    try:
        cancelled_before = await _gauge(client, "tts_requests_total", "piper", outcome="cancelled")
        stream = client.stream_piper(LONG_TEXT)
        first = await stream.__anext__()
        assert first.samples.size
        # What a disconnecting HTTP client does to the generator: the adapter sends piper the cancel
        # request for this stream's id (no polling on the server, so nothing else would stop it).
        await stream.aclose()
        assert await _wait_for_cancelled(client, cancelled_before) == cancelled_before + 1
        assert await _gauge(client, "tts_model_active_requests", "piper") == 0
        # The stopped call ended in order and the model still serves.
        chunks = [c async for c in client.stream_piper("Still here.")]
        assert chunks and chunks[0].samples.size
    finally:
        await client.close()
    assert not client._background


async def test_cancelling_the_consuming_task_cancels_the_request(triton_piper):
    client = _client(triton_piper)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in client.stream_piper(LONG_TEXT):
            first.set()

    try:
        cancelled_before = await _gauge(client, "tts_requests_total", "piper", outcome="cancelled")
        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 60)
        task.cancel()  # lands in the adapter's read of the gRPC call, which must not cancel the call
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _wait_for_cancelled(client, cancelled_before) == cancelled_before + 1
        assert await _gauge(client, "tts_model_active_requests", "piper") == 0
    finally:
        await client.close()
    assert not client._background


def test_parse_model_info():
    text = (
        "# HELP tts_model_info Loaded model\n# TYPE tts_model_info gauge\n"
        'tts_model_info{model="xtts",model_version="abc123",test_weights="true"} 1\n'
        'tts_model_info{model="piper",model_version="1.8",test_weights="false"} 1\n'
        'nv_inference_count{model="xtts",version="1"} 3\n'
    )
    info = parse_model_info(text)
    assert info["xtts"].model_version == "abc123" and info["xtts"].test_weights
    assert info["piper"].test_weights is False


def test_a_share_travels_as_request_parameters():
    """The tenant and weight the engines' fair queues read (tts_contract.fairness), on the gRPC request itself;
    a request without one carries neither (the engines then use the anonymous tenant)."""
    from control_plane.adapters.triton_calls import infer_request as _infer_request
    from tts_contract.fairness import Share

    with_share = _infer_request("piper", [], "id-1", Share("tenant-a", 3.0))
    assert with_share.parameters["tenant"].string_param == "tenant-a"
    assert with_share.parameters["weight"].double_param == 3.0
    assert with_share.parameters["triton_enable_empty_final_response"].bool_param
    assert Share.from_parameters({k: v.string_param or v.double_param
                                  for k, v in with_share.parameters.items()}) == Share("tenant-a", 3.0)
    without = _infer_request("piper", [], "id-2")
    assert "tenant" not in without.parameters and "weight" not in without.parameters
