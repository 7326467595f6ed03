"""What a refusal costs, for `bench fairness` (bench/fairness_stage.py): a burst written on open connections
and read with raw sockets, sequential refusals beside a 404, the same on a gateway of several workers, and
this checkout's control plane against another checkout's, alternating on one Triton."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from bench.fairness_clients import LONG, Scenario, Texts, _cpu_s, _loop_cpu_s, _p, _request, _tenant
from bench.metrics import percentile
from bench.stack import Stack, another_api


async def _raw_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                       start: float) -> tuple[int, float, float | None]:
    """One request on an open connection, read with no HTTP client in the way: (status, seconds to the end of
    the refusal or to the response head, seconds to the first audio bytes of a stream)."""
    writer.write(request)
    await writer.drain()
    status, length = await _head(reader)
    if status != 200:
        await reader.readexactly(length)
        return status, time.monotonic() - start, None
    head = time.monotonic() - start
    line = await reader.readline()  # the first chunk's size: audio follows it (an empty stream ends with 0)
    return status, head, time.monotonic() - start if line.strip() not in (b"", b"0") else None


async def _head(reader: asyncio.StreamReader) -> tuple[int, int]:
    """A response's status and Content-Length (0 where it has none), its head read."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, length


async def _burst(client, stack: Stack, texts: Texts, size: int, label: str, key: str = "") -> dict[str, Any]:
    """`size` requests written at the same instant on connections opened beforehand (callers keep their
    connections alive; opening 120 at once would be measured too), read without an HTTP client in the way.
    Of a new tenant, or of `key`'s."""
    from urllib.parse import urlsplit

    if not key:
        key = await _tenant(client, stack, f"burst-{label}")
        await _request(client, stack.base, key, "burst", texts.next(), Scenario())  # its key known to the gateway
    url = urlsplit(stack.base)
    connections = [await asyncio.open_connection(url.hostname, url.port) for _ in range(size)]
    # Each connection's process (with several uvicorn workers, the one that accepted it) has looked the key up,
    # as it has for a tenant that has been sending: the burst is answered as overload is, not as a first call.
    warm = b"GET /v1/tenant/config HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + key.encode() + b"\r\n\r\n"
    for reader, writer in connections:
        writer.write(warm)
        status, length = await _head(reader)
        await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"burst: the key's lookup was answered {status}")
    requests = []
    for _ in range(size):
        body = json.dumps({"text": texts.next(), "format": "pcm"}).encode()
        requests.append(b"POST /v1/synthesize/stream HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer "
                        + key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\n\r\n" + body)
    cpu0, loop0 = _cpu_s(stack.api_pid), _loop_cpu_s(stack.api_pid)
    start = time.monotonic()
    try:
        answers = await asyncio.gather(*(_raw_request(r, w, req, start)
                                         for (r, w), req in zip(connections, requests, strict=True)))
    finally:
        for _, writer in connections:
            writer.close()
    cpu_all, loop_all = _cpu_s(stack.api_pid) - cpu0, _loop_cpu_s(stack.api_pid) - loop0
    refused = [t for status, t, _ in answers if status == 503]
    served = [first for status, _, first in answers if status == 200 and first is not None]
    others = sorted({status for status, _, _ in answers} - {200, 503})
    if others:
        raise RuntimeError(f"burst: unexpected statuses {others}")
    return {"requests": size, "refused": len(refused), "admitted": len(served),
            "refused_p50_ms": _p(refused, 50), "refused_p95_ms": _p(refused, 95), "refused_max_ms": _p(refused, 100),
            "admitted_first_audio_p50_ms": _p(served, 50), "admitted_first_audio_p95_ms": _p(served, 95),
            "gateway_cpu_ms_per_request": round(cpu_all * 1000 / size, 3),
            "loop_cpu_ms_per_request": round(loop_all * 1000 / size, 3)}


async def _refusal_cost(client, stack: Stack, texts: Texts, count: int, dropped: list[str]) -> dict[str, Any]:
    """Sequential refusals of one tenant whose long stream is in flight on a gateway bound to 1 ms (each time the
    server drops it noted in `dropped`). (With several workers, a request that reaches a worker other than the
    long stream's is admitted: that worker does not see the tenant's backlog.)"""
    import httpx

    key = await _tenant(client, stack, "refused")
    warm = Scenario()
    for _ in range(3):  # the service rate is measured
        await _request(client, stack.base, key, "r", texts.next(), warm)
    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {key}"}
    flowing = asyncio.Event()
    holder = asyncio.create_task(_hold_busy(client, stack, key, flowing, dropped))
    try:
        await flowing.wait()
        for path in ("/v1/synthesize/stream", "/v1/audio/speech"):
            scenario = Scenario()
            for _ in range(20):  # the connection pool and code paths warm
                await _request(client, stack.base, key, "r", texts.next(), scenario, path, read_audio=False)
            scenario, errors = Scenario(), 0
            cpu0 = _cpu_s(stack.api_pid)
            for _ in range(count):
                try:
                    await _request(client, stack.base, key, "r", texts.next(), scenario, path, read_audio=False)
                except httpx.HTTPError:  # counted: a connection the server dropped
                    errors += 1
            cpu = _cpu_s(stack.api_pid) - cpu0
            refused = [o for o in scenario.outcomes if o.status == 503]
            out[path] = {"requests": count, "refused": len(refused), "errors": errors,
                         "gateway_cpu_ms_per_refusal": round(cpu * 1000 / count, 3),  # all refused: per refusal
                         "latency_p50_ms": _p([o.total_s for o in refused], 50),
                         "latency_p95_ms": _p([o.total_s for o in refused], 95)}
        # The floor: a request no route takes (404) through the same server, middleware and error mapper.
        for _ in range(20):
            await client.post(f"{stack.base}/v1/unrouted", json={"text": "x"}, headers=headers)
        per = await _unrouted_cpu_ms(client, stack, key, count)
        out["floor (404, no route)"] = {"requests": count, "refused": 0, "gateway_cpu_ms_per_refusal": round(per, 3),
                                        "latency_p50_ms": None, "latency_p95_ms": None}
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder
    return out


MAX_DROPS = 5  # the held stream dropped this many times: the gateway or Triton is failing, not a blip


async def _hold_busy(client, api: Stack, key: str, flowing: asyncio.Event, dropped: list[str] | None = None) -> None:
    """One long stream of the tenant in flight at all times (a new one when the last ends), read as it comes.
    A stream the server cuts off is noted in `dropped` (with the gateway's last log lines) and replaced."""
    import httpx

    while True:
        try:
            async with client.stream("POST", f"{api.base}/v1/synthesize/stream",
                                     json={"text": LONG, "format": "pcm"},
                                     headers={"Authorization": f"Bearer {key}"}) as long:
                if long.status_code != 200:
                    raise RuntimeError(f"the long stream was answered {long.status_code}")
                async for _ in long.aiter_raw():
                    flowing.set()
        except httpx.HTTPError as exc:
            if dropped is None:
                raise
            dropped.append(f"{type(exc).__name__}: {exc}; gateway log: {_log_tail(api)}")
            if len(dropped) >= MAX_DROPS:
                raise RuntimeError(f"the long stream was dropped {len(dropped)} times: {dropped}") from exc


def _log_tail(api: Stack, lines: int = 3) -> str:
    if api.api_log is None or not api.api_log.exists():
        return "(none)"
    return " | ".join(api.api_log.read_text(errors="replace").splitlines()[-lines:])


BARE = "bare uvicorn (floor)"


WORKERS = "this checkout, "  # the label of this checkout run on several workers begins so


def workers_label(workers: int) -> str:
    return f"{WORKERS}{workers} workers"


async def _second_gateway_runs(stack: Stack, args, log, api_env: dict[str, str], burst: bool) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=args.burst + 20, max_keepalive_connections=args.burst + 20)
    if burst:
        with another_api(stack, "fair-burst", api_env) as api:
            async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
                log(f"  burst of {args.burst} ({api_env.get('TTS_WORKERS', '1')} workers)")
                out["burst"] = await _burst(client, api, Texts(n=10**6), args.burst, "w")
    bound = {**api_env, "ADMISSION_MAX_WAIT_S": "0.001", "ADMISSION_MIN_INFLIGHT": "1"}
    with another_api(stack, "fair-cost", bound) as api:
        async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
            log(f"  refusal cost over {args.refusals} sequential refusals ({api_env.get('TTS_WORKERS', '1')} workers)")
            out["held_stream_dropped"] = dropped = list[str]()
            out["refusal_cost"] = await _refusal_cost(client, api, Texts(n=2 * 10**6 * (1 + len(api_env))),
                                                      args.refusals, dropped)
    return out


async def _loop_cpu_idle(api: Stack, seconds: float) -> float:
    """The event loop's CPU over `seconds` with no request sent: what the held stream's relaying (and the loop's
    own timers) cost it in as long as the refusals took, to subtract from theirs."""
    loop0 = _loop_cpu_s(api.api_pid)
    await asyncio.sleep(seconds)
    return _loop_cpu_s(api.api_pid) - loop0


async def _unrouted_cpu_ms(client, api: Stack, key: str, count: int) -> float:
    """The gateway's CPU per request that no route takes (404) through the same server, middleware and error
    mapper: the HTTP stack's floor."""
    headers = {"Authorization": f"Bearer {key}"}
    cpu0 = _cpu_s(api.api_pid)
    for _ in range(count):
        r = await client.post(f"{api.base}/v1/unrouted", json={"text": "x"}, headers=headers)
        assert r.status_code == 404
    return (_cpu_s(api.api_pid) - cpu0) * 1000 / count


async def _paired(stack: Stack, args, log) -> dict[str, Any]:
    """The refusal cost of this checkout's control plane and of `args.compare_checkout`'s, side by side on the
    same Triton in the same minutes: each holds a long stream of one tenant in flight under a 1 ms bound,
    and the rounds alternate between them (sequential refusals of that tenant, then a burst of it, on each;
    then a 404 on each). The floor runs in the same rounds: a bare ASGI app answering 503 at once under the
    same uvicorn settings (bench/refusal_floor.py), what uvicorn alone costs. With `--workers N` (N > 1) this
    checkout runs a second time with N uvicorn workers in the same rounds: whether more event loops answer a
    burst sooner (each worker decides on what it sees itself: without Redis a request that reaches a worker
    other than the held stream's is admitted, so its sequential requests are not all refused)."""
    import httpx

    from bench.refusal_floor import bare_server

    bound = {"ADMISSION_MAX_WAIT_S": "0.001", "ADMISSION_MIN_INFLIGHT": "1"}
    limits = httpx.Limits(max_connections=args.burst + 20, max_keepalive_connections=args.burst + 20)
    samples: dict[str, dict[str, list[float]]] = {}
    with contextlib.ExitStack() as servers:
        apis = {"this checkout": servers.enter_context(another_api(stack, "fair-this", bound)),
                "compared checkout": servers.enter_context(another_api(stack, "fair-other", bound,
                                                                       args.compare_checkout)),
                BARE: servers.enter_context(bare_server(stack))}
        if args.workers > 1:
            apis[workers_label(args.workers)] = servers.enter_context(
                another_api(stack, "fair-workers", {**bound, "TTS_WORKERS": str(args.workers)}))
        async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
            texts, keys, held, dropped = Texts(n=3 * 10**6), {BARE: "tts_bare"}, [], list[str]()
            for label, api in apis.items():
                samples[label] = {"cpu_ms_per_refusal": [], "loop_cpu_ms_per_refusal": [],
                                  "loop_cpu_ms_per_refusal_net": [], "refusal_p50_ms": [],
                                  "share_refused": [], "burst_refusal_p95_ms": [], "burst_cpu_ms_per_request": [],
                                  "burst_loop_cpu_ms_per_request": []}
                if label == BARE:
                    continue
                samples[label]["floor_404_cpu_ms"] = []
                log(f"  {label}: a tenant, the engine's rate measured, its long stream held")
                keys[label] = key = await _tenant(client, api, "paired")
                for _ in range(3):  # the service rate is measured
                    await _request(client, api.base, key, "p", texts.next(), Scenario())
                flowing = asyncio.Event()
                held.append(asyncio.create_task(_hold_busy(client, api, key, flowing, dropped)))
                await flowing.wait()
            for r in range(args.rounds):
                log(f"  paired refusal cost, round {r + 1} of {args.rounds}")
                for label, api in apis.items():
                    scenario = Scenario()
                    cpu0, loop0, started = _cpu_s(api.api_pid), _loop_cpu_s(api.api_pid), time.monotonic()
                    for _ in range(args.refusals):
                        await _request(client, api.base, keys[label], "p", texts.next(), scenario, read_audio=False)
                    cpu, loop = _cpu_s(api.api_pid) - cpu0, _loop_cpu_s(api.api_pid) - loop0
                    refused = [o.total_s for o in scenario.outcomes if o.status == 503]
                    got = samples[label]
                    got["cpu_ms_per_refusal"].append(cpu * 1000 / max(1, len(refused)))
                    got["loop_cpu_ms_per_refusal"].append(loop * 1000 / max(1, len(refused)))
                    background = await _loop_cpu_idle(api, time.monotonic() - started)
                    got["loop_cpu_ms_per_refusal_net"].append((loop - background) * 1000 / max(1, len(refused)))
                    got["refusal_p50_ms"].append((percentile(refused, 50) or 0) * 1000)
                    got["share_refused"].append(len(refused) / args.refusals)
                    burst = await _burst(client, api, texts, args.burst, "p", keys[label])
                    got["burst_refusal_p95_ms"].append(burst["refused_p95_ms"] or 0)
                    got["burst_cpu_ms_per_request"].append(burst["gateway_cpu_ms_per_request"])
                    got["burst_loop_cpu_ms_per_request"].append(burst["loop_cpu_ms_per_request"])
                    if label != BARE:
                        got["floor_404_cpu_ms"].append(await _unrouted_cpu_ms(client, api, keys[label],
                                                                               args.refusals))
            for task in held:
                task.cancel()
    out: dict[str, Any] = {label: {name: round(percentile(values, 50) or 0, 3) for name, values in got.items()}
                           for label, got in samples.items()}
    return {**out, "rounds": args.rounds, "compared": str(args.compare_checkout), "held_stream_dropped": dropped}
