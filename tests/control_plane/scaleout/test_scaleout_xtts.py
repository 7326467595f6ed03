"""Voice conditioning and XTTS streams spread across three Triton replicas serving the tiny XTTS.

The replicas share 127.0.0.1 on ports of their own, so the gateway is given each one's HTTP and
metrics endpoint explicitly (TRITON_HTTP_URLS, TRITON_METRICS_URLS). Counts are Triton's own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from fault_helpers import KillableTriton
from gateway_helpers import encode_reference, piper_speech, run_gateway, settled_triton_counter

SUCCESS = "nv_inference_request_success_total"


@pytest.fixture(scope="module")
def xtts_replicas(tiny_xtts_artifact, tmp_path_factory):
    env = {"XTTS_MODEL_PATH": str(tiny_xtts_artifact), "XTTS_MAX_BATCH_SIZE": "4"}
    servers = [KillableTriton(tmp_path_factory.mktemp(f"xtts-replica-{i}"), models=["xtts", "xtts_condition"],
                              env=env) for i in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda s: s.start(timeout=300), servers))
        yield servers
    finally:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda s: s.stop(), servers))


@pytest.fixture(scope="module")
def gateway(xtts_replicas, tmp_path_factory):
    lists = {
        "triton_grpc_urls": ",".join(r.grpc_url for r in xtts_replicas),
        "triton_http_urls": ",".join(r.http_url for r in xtts_replicas),
        "triton_metrics_urls": ",".join(r.metrics_url for r in xtts_replicas),
    }
    with run_gateway(tmp_path_factory.mktemp("gw-xtts-scaleout"), xtts_replicas[0], **lists) as gw:
        yield gw


async def _served(replicas, model: str) -> list[float]:
    return list(await asyncio.gather(*(settled_triton_counter(r.metrics_url, SUCCESS, model=model)
                                       for r in replicas)))


async def test_conditioning_and_xtts_streams_spread_across_replicas(xtts_replicas, gateway):
    x, rate = piper_speech(5.0)
    reference = encode_reference(x, rate, "wav")
    _, key = await gateway.tenant(max_concurrent_streams=16)
    async with gateway.client(key, timeout=300) as c:
        uploads = await asyncio.gather(*(
            c.post("/v1/voices/upload", data={"name": f"voice-{i}", "language": "en"},
                   files={"audio": ("ref.wav", reference, "audio/wav")}) for i in range(3)))
        assert [r.status_code for r in uploads] == [201] * 3, [r.text for r in uploads]
        assert await _served(xtts_replicas, "xtts_condition") == [1, 1, 1]

        voices = [r.json()["voice_id"] for r in uploads]
        bodies = [{"text": f"Hello number {i}.", "voice_id": voices[i % 3], "format": "pcm", "seed": i}
                  for i in range(6)]
        streams = await asyncio.gather(*(c.post("/v1/synthesize/stream", json=b) for b in bodies))
    for r in streams:
        assert r.status_code == 200 and r.headers["x-engine"] == "xtts" and len(r.content) > 0, r.text
    served = await _served(xtts_replicas, "xtts")
    assert sum(served) == 6 and all(1 <= n <= 3 for n in served), served  # within one of even
