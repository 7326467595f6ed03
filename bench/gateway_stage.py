"""`bench gateway`: what the control plane adds over calling Triton directly, and cached responses per second.

A real Triton (the bundled Piper voice: the gateway's overhead does not depend on the engine and
Piper keeps the engine's share small and steady) and the control plane as a real server process
on the embedded store, on free ports. The same sentence goes, one request at a time and
alternating, straight to Triton over a gRPC stream and through `POST /v1/synthesize/stream`;
the gateway's added latency is the per-pair difference in time to first audio (and to the last
byte). Then one response is cached and requested again and again.
"""

from __future__ import annotations

import queue
import time
import uuid
from typing import Any

import numpy as np

from bench.errors import StageUnavailable
from bench.metrics import percentile
from bench.results import REPO_ROOT, md_table
from bench.stack import running_stack

# Short, so the engine's own time (and its jitter) stays small next to the gateway's share.
TEXT = "Test {i}."
BENCH_LIMITS = {"requests_per_minute": 1_000_000, "requests_per_hour": 10_000_000, "requests_per_day": 100_000_000,
                "monthly_characters": 10**11}


def _app_present() -> bool:
    return (REPO_ROOT / "control_plane" / "app.py").is_file() and (REPO_ROOT / "model_repository" / "piper").is_dir()


def _direct_piper(client, text: str) -> tuple[float, float, int]:
    """(first audio s, total s, samples) of one Piper stream straight from Triton, on a connected client
    (the gateway keeps its channel open too: neither side pays connection setup per request)."""
    import tritonclient.grpc as grpcclient

    responses: queue.Queue = queue.Queue()
    inputs = []
    for name, array, dtype in (("TEXT", np.array([text.encode()], dtype=np.object_), "BYTES"),
                               ("SPEED", np.array([1.0], dtype=np.float32), "FP32")):
        item = grpcclient.InferInput(name, list(array.shape), dtype)
        item.set_data_from_numpy(array)
        inputs.append(item)
    first, samples = None, 0
    start = time.perf_counter()
    client.start_stream(callback=lambda result=None, error=None: responses.put((result, error)))
    try:
        client.async_stream_infer("piper", inputs, request_id=uuid.uuid4().hex, enable_empty_final_response=True)
        while True:
            result, error = responses.get(timeout=120)
            if error is not None:
                raise RuntimeError(f"triton: {error}")
            response = result.get_response()
            if any(out.name == "AUDIO" for out in response.outputs):
                audio = result.as_numpy("AUDIO")
                if audio is not None and audio.size:
                    first = first if first is not None else time.perf_counter() - start
                    samples += int(audio.size)
            if response.parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
    return (first if first is not None else float("nan")), time.perf_counter() - start, samples


def _through_gateway(client, url: str, headers: dict[str, str], text: str) -> tuple[float, float, int, str]:
    """(first audio byte s, total s, bytes, X-Cache) of one streamed synthesis through the control plane."""
    body = {"text": text, "format": "pcm"}
    start = time.perf_counter()
    first = None
    size = 0
    with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"gateway answered {response.status_code}: {response.read()[:300]!r}")
        for piece in response.iter_raw():
            if piece:
                first = first if first is not None else time.perf_counter() - start
                size += len(piece)
        cache = response.headers.get("x-cache", "")
    return (first if first is not None else float("nan")), time.perf_counter() - start, size, cache


def run_gateway_stage(args, requests: int | None = None, tokens: int | None = None,
                      cached_seconds: float | None = None, log=print) -> dict[str, Any]:
    if not _app_present():
        raise StageUnavailable("control_plane/app.py (the API) or model_repository/piper is not in this tree")
    import httpx

    requests = requests or getattr(args, "requests", 30)
    cached_seconds = cached_seconds or getattr(args, "cached_seconds", 5.0)
    threads = str(getattr(args, "threads", None) or 1)
    with running_stack("gateway", ["piper"], threads) as stack:
        return _measure(stack.base, stack.admin, stack.grpc_url, requests, cached_seconds, httpx, log)


def _measure(base: str, admin: str, grpc_url: str, requests: int, cached_seconds: float, httpx, log) -> dict:
    import tritonclient.grpc as grpcclient

    triton = grpcclient.InferenceServerClient(grpc_url)
    try:
        return _measure_with(base, admin, triton, requests, cached_seconds, httpx, log)
    finally:
        triton.close()


def _measure_with(base: str, admin: str, triton, requests: int, cached_seconds: float, httpx, log) -> dict:
    with httpx.Client(timeout=120) as client:
        # Limits lifted at creation so the cached-response run measures the gateway, not the rate limiter.
        made = client.post(f"{base}/admin/v1/tenants", json={"name": "bench", **BENCH_LIMITS},
                           headers={"Authorization": f"Bearer {admin}"})
        if made.status_code >= 300:
            raise StageUnavailable(f"cannot create a tenant: {made.status_code} {made.text[:300]}")
        tenant = made.json()
        headers = {"Authorization": f"Bearer {tenant['api_key']}"}
        limits = tenant.get("limits", {})
        url = f"{base}/v1/synthesize/stream"
        # Warm both paths (model load, first connection).
        _direct_piper(triton, TEXT.format(i=-1))
        _through_gateway(client, url, headers, TEXT.format(i=-2))
        direct_first, gw_first, direct_total, gw_total, added_first, added_total = [], [], [], [], [], []
        for i in range(requests):
            text = TEXT.format(i=i)  # distinct texts: no cache hits in this part
            if i % 2 == 0:
                d = _direct_piper(triton, text)
                g = _through_gateway(client, url, headers, text)
            else:
                g = _through_gateway(client, url, headers, text)
                d = _direct_piper(triton, text)
            direct_first.append(d[0])
            direct_total.append(d[1])
            gw_first.append(g[0])
            gw_total.append(g[1])
            added_first.append(g[0] - d[0])
            added_total.append(g[1] - d[1])
        # Cached responses: the same request again and again, sequentially over one keep-alive connection.
        cached_text = TEXT.format(i="cached")
        _through_gateway(client, url, headers, cached_text)
        count, hits, statuses = 0, 0, {}
        end = time.perf_counter() + cached_seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            try:
                _, _, _, cache = _through_gateway(client, url, headers, cached_text)
                hits += cache.lower().startswith("hit")
                count += 1
            except RuntimeError as error:
                key = str(error)[:40]
                statuses[key] = statuses.get(key, 0) + 1
                break
        cached_wall = time.perf_counter() - start

    def ms(values: list[float], q: float) -> float | None:
        p = percentile([v for v in values if v == v], q)
        return None if p is None else round(p * 1000, 2)

    result = {
        "requests": requests,
        "engine": "piper",
        "limits_lifted": limits.get("requests_per_minute") == BENCH_LIMITS["requests_per_minute"],
        "direct_ttfa_p50_ms": ms(direct_first, 50), "direct_ttfa_p95_ms": ms(direct_first, 95),
        "gateway_ttfa_p50_ms": ms(gw_first, 50), "gateway_ttfa_p95_ms": ms(gw_first, 95),
        "direct_total_p50_ms": ms(direct_total, 50), "gateway_total_p50_ms": ms(gw_total, 50),
        "gateway_added_p50_ms": ms(added_first, 50), "gateway_added_p95_ms": ms(added_first, 95),
        "gateway_added_total_p50_ms": ms(added_total, 50),
        "cached_requests": count, "cached_hits": hits, "cached_wall_s": round(cached_wall, 3),
        "cached_responses_per_s": round(count / cached_wall, 1) if cached_wall > 0 else None,
        "cached_errors": statuses, "problems": [f"cached run stopped: {k}" for k in statuses],
    }
    log(f"  gateway added p50 {result['gateway_added_p50_ms']} ms (p95 {result['gateway_added_p95_ms']} ms); "
        f"cached {result['cached_responses_per_s']} responses/s ({hits}/{count} hits)")
    return result


def gateway_markdown(result: dict[str, Any]) -> str:
    rows = [
        ["time to first audio p50 (ms)", result["direct_ttfa_p50_ms"], result["gateway_ttfa_p50_ms"],
         result["gateway_added_p50_ms"]],
        ["time to first audio p95 (ms)", result["direct_ttfa_p95_ms"], result["gateway_ttfa_p95_ms"],
         result["gateway_added_p95_ms"]],
        ["whole response p50 (ms)", result["direct_total_p50_ms"], result["gateway_total_p50_ms"],
         result["gateway_added_total_p50_ms"]],
    ]
    table = md_table(["", "Triton direct (gRPC)", "through the gateway (HTTP)", "added (paired, p50/p95)"], rows)
    return (
        f"## Gateway overhead\n\n{result['requests']} sequential requests per path, alternating, engine "
        f"`{result['engine']}`; embedded store, in-process limits and cache.\n\n{table}\n\n"
        f"Cached responses: {result['cached_responses_per_s']} per second over one connection "
        f"({result['cached_hits']}/{result['cached_requests']} cache hits)."
    )
