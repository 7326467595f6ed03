"""`bench fairness`: fair shares of the engine through the real gateway and Triton (bundled Piper voice), in one run.

Every request streams `POST /v1/synthesize/stream` with a text never asked before (no cache hits). A client
refused with 503 `engine_overloaded` waits the Retry-After it was given (at most MAX_BACKOFF_S) and tries
again, as a well-behaved caller does. In order, on one Triton and one gateway:

1. **quiet alone**: tenant B sends one request every `interval` s: its first-audio p50 alone;
2. **saturation**: `saturate` clients of tenant C in a closed loop (each sends its next request when its
   last one ends; one refused waits its Retry-After): the throughput (audio-seconds per second) of an
   engine kept just busy;
3. **noisy neighbour**: tenant A with `flood` clients honouring Retry-After (48: 12x the 4 streams the
   bundled voice's Triton model synthesises at once), while B sends one request every `interval` s: B's
   refusals and first-audio p50 against B alone; the goodput (audio served per second) against (2);
4. **weights 3:1**: tenants P (weight 3) and S (weight 1), each with half of (3)'s clients: served
   audio-seconds in the ratio of the weights;
5. **burst**: `burst` requests of a fresh tenant written in the same instant on connections opened
   beforehand, on an idle engine, read with raw sockets (no HTTP client's own CPU in the figures): how
   fast the refusals are answered and how soon the admitted ones get audio; the gateway's CPU per answer;
6. **refusal cost**: a second gateway on the same Triton holds one long stream in flight with a bound
   (ADMISSION_MAX_WAIT_S) of a millisecond, so each further request of the same tenant is refused: the
   gateway process's CPU time per refusal over `refusals` sequential requests, each surface;
7. with `--workers N` (N > 1), the burst and the refusal cost again on a gateway of N uvicorn workers;
8. with `--compare-checkout DIR` (another checkout of this repository, e.g. `git worktree add DIR COMMIT`),
   the refusal cost of this checkout's control plane and of DIR's, alternating round by round on the same
   Triton (`--rounds`): a before/after that the machine's changing load affects alike.

Targets (docs/benchmarks.md): B never refused and its p50 <= 1.5x alone; the 3:1 ratio within
15 %; goodput >= 0.9x saturation; burst refusals p95 < 50 ms and admitted first audio p95 < 2 s. They are
reported as met or not, not asserted: a benchmark measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from bench.errors import StageUnavailable
from bench.metrics import percentile
from bench.results import md_table
from bench.stack import Stack, another_api, running_stack

PCM_RATE = 22050
MAX_BACKOFF_S = 60.0
LIMITS = {"requests_per_minute": 1_000_000, "requests_per_hour": 10_000_000, "requests_per_day": 100_000_000,
          "monthly_characters": 10**11, "max_concurrent_streams": 10_000}
LONG = " ".join(["This long answer keeps the engine busy while the other requests come in."] * 60)
PHRASES = ["Thanks for calling, your order number {n} has shipped today.",
           "Your appointment {n} is confirmed for Tuesday morning at nine.",
           "I can help with that, case {n} is now open and assigned.",
           "Please hold on while I look up account {n} for you."]


@dataclass
class Outcome:
    tenant: str
    at: float  # seconds since the scenario began
    status: int
    first_s: float | None = None
    total_s: float = 0.0
    audio_s: float = 0.0
    retry_after: float = 0.0


@dataclass
class Texts:
    """Texts never asked before in this run (the cache never answers)."""

    n: int = 0

    def next(self) -> str:
        self.n += 1
        return PHRASES[self.n % len(PHRASES)].format(n=self.n)


@dataclass
class Scenario:
    started: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)


async def _request(client: Any, base: str, key: str, tenant: str, text: str, scenario: Scenario,
                   path: str = "/v1/synthesize/stream", read_audio: bool = True) -> Outcome:
    """One request; a refusal waits its answer, an admitted stream is read to its end (or, without
    `read_audio`, left at once: the gateway cancels it)."""
    start = time.monotonic()
    at = start - scenario.started
    body: dict[str, Any] = {"text": text, "format": "pcm"}
    if path == "/v1/audio/speech":
        body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}
    size, first = 0, None
    async with client.stream("POST", f"{base}{path}", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        if r.status_code != 200:
            payload = await r.aread()
            if r.status_code != 503 or b"engine_overloaded" not in payload:
                raise RuntimeError(f"{tenant}: status {r.status_code}: {payload[:200]!r}")
            out = Outcome(tenant, at, 503, total_s=time.monotonic() - start,
                          retry_after=float(r.headers.get("Retry-After", "1")))
            scenario.outcomes.append(out)
            return out
        async for piece in r.aiter_raw():
            if piece and first is None:
                first = time.monotonic() - start
            size += len(piece)
            if not read_audio:
                break
    rate = 24000 if path == "/v1/audio/speech" else PCM_RATE
    out = Outcome(tenant, at, 200, first, time.monotonic() - start, size / 2 / rate)
    scenario.outcomes.append(out)
    return out


async def _retrying_client(client, base, key, tenant, texts: Texts, scenario: Scenario, until: float) -> None:
    while time.monotonic() < until:
        out = await _request(client, base, key, tenant, texts.next(), scenario)
        if out.status == 503:
            await asyncio.sleep(min(out.retry_after, MAX_BACKOFF_S, max(0.0, until - time.monotonic())))


async def _service_rate(client, base: str) -> float:
    """The gateway's measured service rate of Piper (characters per busy second), as admission sees it."""
    text = (await client.get(f"{base}/metrics")).text
    for line in text.splitlines():
        if line.startswith('tts_engine_service_rate_characters_per_second{engine="piper"}'):
            return round(float(line.split()[-1]), 1)
    return 0.0


async def _closed_loop(client, base, key, tenant, texts: Texts, scenario: Scenario, until: float) -> None:
    while time.monotonic() < until:
        await _request(client, base, key, tenant, texts.next(), scenario)


async def _periodic(client, base, key, tenant, texts: Texts, scenario: Scenario, count: int,
                    interval: float) -> None:
    for i in range(count):
        due = scenario.started + i * interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await _request(client, base, key, tenant, texts.next(), scenario)


def _served(scenario: Scenario, tenant: str, until: float | None = None) -> list[Outcome]:
    return [o for o in scenario.outcomes if o.tenant == tenant and o.status == 200
            and (until is None or o.at + o.total_s <= until)]


def _p(values: list[float], q: float) -> float | None:
    p = percentile(values, q)
    return None if p is None else round(p * 1000, 1)


async def _tenant(client, stack: Stack, name: str, **extra: Any) -> str:
    r = await client.post(f"{stack.base}/admin/v1/tenants", json={"name": name, **LIMITS, **extra},
                          headers={"Authorization": f"Bearer {stack.admin}"})
    if r.status_code >= 300:
        raise StageUnavailable(f"cannot create tenant {name}: {r.status_code} {r.text[:200]}")
    return r.json()["api_key"]


def _cpu_s(pid: int) -> float:
    """CPU time of the gateway: its process, its live children (uvicorn workers) and those that ended."""
    import psutil

    proc = psutil.Process(pid)
    total = sum(proc.cpu_times()[:4])  # user, system, and the children's it has waited for
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker that just ended
            total += sum(child.cpu_times()[:2])
    return total


async def _raw_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                       start: float) -> tuple[int, float, float | None]:
    """One request on an open connection, read with no HTTP client in the way: (status, seconds to the end of
    the refusal or to the response head, seconds to the first audio bytes of a stream)."""
    writer.write(request)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if status != 200:
        await reader.readexactly(length)
        return status, time.monotonic() - start, None
    head = time.monotonic() - start
    line = await reader.readline()  # the first chunk's size: audio follows it (an empty stream ends with 0)
    return status, head, time.monotonic() - start if line.strip() not in (b"", b"0") else None


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
    requests = []
    for _ in range(size):
        body = json.dumps({"text": texts.next(), "format": "pcm"}).encode()
        requests.append(b"POST /v1/synthesize/stream HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer "
                        + key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\n\r\n" + body)
    cpu0 = _cpu_s(stack.api_pid)
    start = time.monotonic()
    try:
        answers = await asyncio.gather(*(_raw_request(r, w, req, start)
                                         for (r, w), req in zip(connections, requests, strict=True)))
    finally:
        for _, writer in connections:
            writer.close()
    cpu_all = _cpu_s(stack.api_pid) - cpu0
    refused = [t for status, t, _ in answers if status == 503]
    served = [first for status, _, first in answers if status == 200 and first is not None]
    others = sorted({status for status, _, _ in answers} - {200, 503})
    if others:
        raise RuntimeError(f"burst: unexpected statuses {others}")
    return {"requests": size, "refused": len(refused), "admitted": len(served),
            "refused_p50_ms": _p(refused, 50), "refused_p95_ms": _p(refused, 95), "refused_max_ms": _p(refused, 100),
            "admitted_first_audio_p50_ms": _p(served, 50), "admitted_first_audio_p95_ms": _p(served, 95),
            "gateway_cpu_ms_per_request": round(cpu_all * 1000 / size, 3)}


async def _refusal_cost(client, stack: Stack, texts: Texts, count: int) -> dict[str, Any]:
    """Sequential refusals of one tenant whose long stream is in flight on a gateway bound to 1 ms. (With several
    workers, a request that reaches a worker other than the long stream's is admitted: that worker does not
    see the tenant's backlog.)"""
    import httpx

    key = await _tenant(client, stack, "refused")
    warm = Scenario()
    for _ in range(3):  # the service rate is measured
        await _request(client, stack.base, key, "r", texts.next(), warm)
    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {key}"}
    async with client.stream("POST", f"{stack.base}/v1/synthesize/stream", json={"text": LONG, "format": "pcm"},
                             headers=headers) as long:
        chunks = long.aiter_raw()
        await chunks.__anext__()
        reader = asyncio.create_task(_drain(chunks))
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
        cpu0 = _cpu_s(stack.api_pid)
        for _ in range(count):
            r = await client.post(f"{stack.base}/v1/unrouted", json={"text": "x"}, headers=headers)
            assert r.status_code == 404
        per = (_cpu_s(stack.api_pid) - cpu0) * 1000 / count
        out["floor (404, no route)"] = {"requests": count, "refused": 0, "gateway_cpu_ms_per_refusal": round(per, 3),
                                        "latency_p50_ms": None, "latency_p95_ms": None}
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await reader
    return out


async def _hold_busy(client, api: Stack, key: str, flowing: asyncio.Event) -> None:
    """One long stream of the tenant in flight at all times (a new one when the last ends), read as it comes."""
    while True:
        async with client.stream("POST", f"{api.base}/v1/synthesize/stream", json={"text": LONG, "format": "pcm"},
                                 headers={"Authorization": f"Bearer {key}"}) as long:
            if long.status_code != 200:
                raise RuntimeError(f"the long stream was answered {long.status_code}")
            async for _ in long.aiter_raw():
                flowing.set()


async def _drain(chunks) -> None:
    async for _ in chunks:
        pass


async def _run(stack: Stack, args, log) -> dict[str, Any]:
    import httpx

    texts = Texts()
    clients = args.flood
    connections = clients + args.burst + 20
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    result: dict[str, Any] = {"saturate_clients": args.saturate, "flood_clients": clients, "seconds": args.seconds,
                              "interval_s": args.interval, "quiet_requests": args.quiet_requests}
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        keys = {name: await _tenant(client, stack, name, **extra) for name, extra in (
            ("A", {}), ("B", {}), ("C", {}), ("P", {"weight": 3.0}), ("S", {"weight": 1.0}))}
        base = stack.base
        warm = Scenario()  # model warm-up and the first rate measurement
        await asyncio.gather(*(_closed_loop(client, base, keys["C"], "C", texts, warm, time.monotonic() + 3)
                               for _ in range(args.saturate)))

        log("  quiet tenant alone")
        alone = Scenario()
        await _periodic(client, base, keys["B"], "B", texts, alone, args.quiet_requests, args.interval)
        alone_first = [o.first_s or 0 for o in _served(alone, "B")]

        log(f"  saturation: {args.saturate} clients in a closed loop for {args.seconds:g} s")
        sat = Scenario()
        until = time.monotonic() + args.seconds
        # Refused ones (if any: then the loop is past saturation) honour Retry-After, not a refusal storm.
        await asyncio.gather(*(_retrying_client(client, base, keys["C"], "C", texts, sat, until)
                               for _ in range(args.saturate)))
        sat_audio = sum(o.audio_s for o in _served(sat, "C", args.seconds)) / args.seconds
        sat_refused = sum(1 for o in sat.outcomes if o.status == 503)
        rates = {"saturation": await _service_rate(client, base)}

        log(f"  noisy neighbour: {clients} clients of A honouring Retry-After, B every {args.interval:g} s")
        noisy = Scenario()
        until = time.monotonic() + args.seconds
        quiet_count = max(1, int(args.seconds / args.interval))
        await asyncio.gather(_periodic(client, base, keys["B"], "B", texts, noisy, quiet_count, args.interval),
                             *(_retrying_client(client, base, keys["A"], "A", texts, noisy, until)
                               for _ in range(clients)))
        noisy_b = [o for o in noisy.outcomes if o.tenant == "B"]
        noisy_first = [o.first_s or 0 for o in noisy_b if o.status == 200]
        goodput = sum(o.audio_s for o in noisy.outcomes if o.status == 200 and o.at + o.total_s <= args.seconds)
        goodput /= args.seconds
        a_refused = [o.total_s for o in noisy.outcomes if o.tenant == "A" and o.status == 503]
        rates["noisy"] = await _service_rate(client, base)

        log(f"  weights 3:1: {clients // 2} clients each, honouring Retry-After")
        weighted = Scenario()
        until = time.monotonic() + args.seconds
        await asyncio.gather(*(_retrying_client(client, base, keys[t], t, texts, weighted, until)
                               for t in ("P", "S") for _ in range(clients // 2)))
        p_audio = sum(o.audio_s for o in _served(weighted, "P", args.seconds))
        s_audio = sum(o.audio_s for o in _served(weighted, "S", args.seconds))
        rates["weighted"] = await _service_rate(client, base)

        await asyncio.sleep(3.0)  # the engine idle again
        log(f"  burst of {args.burst}")
        burst = await _burst(client, stack, texts, args.burst, "1")

    alone_p50, noisy_p50 = percentile(alone_first, 50), percentile(noisy_first, 50)
    ratio = p_audio / s_audio if s_audio else None
    result.update({
        "quiet_alone_first_audio_p50_ms": _p(alone_first, 50),
        "noisy": {"quiet_requests": len(noisy_b), "quiet_refused": sum(1 for o in noisy_b if o.status == 503),
                  "quiet_first_audio_p50_ms": _p(noisy_first, 50), "quiet_first_audio_p95_ms": _p(noisy_first, 95),
                  "quiet_p50_over_alone": round(noisy_p50 / alone_p50, 2) if alone_p50 and noisy_p50 else None,
                  "flood_served": len(_served(noisy, "A")), "flood_refused": len(a_refused),
                  "flood_refusal_p95_ms": _p(a_refused, 95),
                  "goodput_audio_s_per_s": round(goodput, 2)},
        "saturation_audio_s_per_s": round(sat_audio, 2), "saturation_refused": sat_refused,
        "measured_rate_chars_per_s": rates,
        "goodput_over_saturation": round(goodput / sat_audio, 2) if sat_audio else None,
        "weighted": {"weight3_audio_s": round(p_audio, 1), "weight1_audio_s": round(s_audio, 1),
                     "ratio": None if ratio is None else round(ratio, 2),
                     "weight3_refused": sum(1 for o in weighted.outcomes if o.tenant == "P" and o.status == 503),
                     "weight1_refused": sum(1 for o in weighted.outcomes if o.tenant == "S" and o.status == 503)},
        "burst": burst,
    })
    return result


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
            out["refusal_cost"] = await _refusal_cost(client, api, Texts(n=2 * 10**6 * (1 + len(api_env))),
                                                      args.refusals)
    return out


async def _paired(stack: Stack, args, log) -> dict[str, Any]:
    """The refusal cost of this checkout's control plane and of `args.compare_checkout`'s, side by side on the
    same Triton in the same minutes: each holds a long stream of one tenant in flight under a 1 ms bound,
    and the rounds alternate between them (sequential refusals of that tenant, then a burst of it, on each)."""
    import httpx

    bound = {"ADMISSION_MAX_WAIT_S": "0.001", "ADMISSION_MIN_INFLIGHT": "1"}
    limits = httpx.Limits(max_connections=args.burst + 20, max_keepalive_connections=args.burst + 20)
    samples: dict[str, dict[str, list[float]]] = {}
    with contextlib.ExitStack() as servers:
        apis = {"this checkout": servers.enter_context(another_api(stack, "fair-this", bound)),
                "compared checkout": servers.enter_context(another_api(stack, "fair-other", bound,
                                                                       args.compare_checkout))}
        async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
            texts, keys, held = Texts(n=3 * 10**6), {}, []
            for label, api in apis.items():
                keys[label] = key = await _tenant(client, api, "paired")
                for _ in range(3):  # the service rate is measured
                    await _request(client, api.base, key, "p", texts.next(), Scenario())
                flowing = asyncio.Event()
                held.append(asyncio.create_task(_hold_busy(client, api, key, flowing)))
                await flowing.wait()
                samples[label] = {"cpu_ms_per_refusal": [], "refusal_p50_ms": [], "share_refused": [],
                                  "burst_refusal_p95_ms": [], "burst_cpu_ms_per_request": []}
            for r in range(args.rounds):
                log(f"  paired refusal cost, round {r + 1} of {args.rounds}")
                for label, api in apis.items():
                    scenario = Scenario()
                    cpu0 = _cpu_s(api.api_pid)
                    for _ in range(args.refusals):
                        await _request(client, api.base, keys[label], "p", texts.next(), scenario, read_audio=False)
                    cpu = _cpu_s(api.api_pid) - cpu0
                    refused = [o.total_s for o in scenario.outcomes if o.status == 503]
                    got = samples[label]
                    got["cpu_ms_per_refusal"].append(cpu * 1000 / max(1, len(refused)))
                    got["refusal_p50_ms"].append((percentile(refused, 50) or 0) * 1000)
                    got["share_refused"].append(len(refused) / args.refusals)
                    burst = await _burst(client, api, texts, args.burst, "p", keys[label])
                    got["burst_refusal_p95_ms"].append(burst["refused_p95_ms"] or 0)
                    got["burst_cpu_ms_per_request"].append(burst["gateway_cpu_ms_per_request"])
            for task in held:
                task.cancel()
    out: dict[str, Any] = {label: {name: round(percentile(values, 50) or 0, 3) for name, values in got.items()}
                           for label, got in samples.items()}
    return {**out, "rounds": args.rounds, "compared": str(args.compare_checkout)}


def run_fairness_stage(args, log=print) -> dict[str, Any]:
    load_before = os.getloadavg()
    # The gateway logs as in production (LOG_LEVEL's default, INFO: one access line per request).
    api_env = {"MAX_CONCURRENT_STREAMS": "10000", "TRITON_REQUEST_TIMEOUT_S": "600", "LOG_LEVEL": "INFO"}
    with running_stack("fairness", ["piper"], "1", None, api_env) as stack:
        if args.only_paired:
            if args.compare_checkout is None:
                raise StageUnavailable("--only-paired needs --compare-checkout")
            result: dict[str, Any] = {"paired": asyncio.run(_paired(stack, args, log)), "only_paired": True}
        else:
            result = asyncio.run(_run(stack, args, log))
            result["one_worker"] = asyncio.run(_second_gateway_runs(stack, args, log, {}, burst=False))
            if args.workers > 1:
                result["workers"] = args.workers
                result["many_workers"] = asyncio.run(_second_gateway_runs(
                    stack, args, log, {"TTS_WORKERS": str(args.workers)}, burst=True))
            if args.compare_checkout is not None:
                result["paired"] = asyncio.run(_paired(stack, args, log))
            result["targets"] = _targets(result)
    # Other work on the machine shares its cores with Triton and the gateway: recorded beside the figures.
    result["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    return result


def _targets(r: dict[str, Any]) -> dict[str, bool | None]:
    n, w, b = r["noisy"], r["weighted"], r["burst"]
    return {
        "noisy neighbour: the quiet tenant is never refused": n["quiet_refused"] == 0,
        "noisy neighbour: quiet first audio p50 <= 1.5x alone":
            None if n["quiet_p50_over_alone"] is None else n["quiet_p50_over_alone"] <= 1.5,
        "weights 3:1: served audio ratio within 3 +- 15 %":
            None if w["ratio"] is None else abs(w["ratio"] / 3 - 1) <= 0.15,
        "goodput at overload >= 0.9x saturation":
            None if r["goodput_over_saturation"] is None else r["goodput_over_saturation"] >= 0.9,
        "burst: refusals p95 < 50 ms": None if b["refused_p95_ms"] is None else b["refused_p95_ms"] < 50,
        "burst: admitted first audio p95 < 2 s":
            None if b["admitted_first_audio_p95_ms"] is None else b["admitted_first_audio_p95_ms"] < 2000,
    }


def _paired_rows(paired: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for label in ("this checkout", "compared checkout"):
        p = paired[label]
        rows.append([f"{label} (median of {paired['rounds']} alternating rounds): share of the sequential requests "
                     "refused, CPU per refusal (ms), refusal p50 (ms), burst refusals p95 (ms), burst CPU per "
                     "request (ms)", f"{p['share_refused']}, {p['cpu_ms_per_refusal']}, {p['refusal_p50_ms']}, "
                     f"{p['burst_refusal_p95_ms']}, {p['burst_cpu_ms_per_request']}"])
    return rows


def fairness_markdown(r: dict[str, Any]) -> str:
    if r.get("only_paired"):
        return ("## Refusal cost: this checkout against another, alternating on one Triton\n\n"
                f"Compared: `{r['paired']['compared']}`; machine load average (1 min) before / after: "
                f"{r['load_average_before_after'][0]} / {r['load_average_before_after'][1]}.\n\n"
                + md_table(["", ""], _paired_rows(r["paired"])))
    n, w, b = r["noisy"], r["weighted"], r["burst"]
    rows = [
        ["quiet tenant alone: first audio p50 (ms)", r["quiet_alone_first_audio_p50_ms"]],
        [f"noisy neighbour ({r['flood_clients']} flooding clients): quiet tenant refused / requests",
         f"{n['quiet_refused']} / {n['quiet_requests']}"],
        ["noisy neighbour: quiet first audio p50 / p95 (ms), p50 over alone",
         f"{n['quiet_first_audio_p50_ms']} / {n['quiet_first_audio_p95_ms']}, {n['quiet_p50_over_alone']}x"],
        ["noisy neighbour: flood served / refused, its refusals p95 (ms)",
         f"{n['flood_served']} / {n['flood_refused']}, {n['flood_refusal_p95_ms']}"],
        [f"closed loop of {r['saturate_clients']} clients: audio-s per s (its refusals)",
         f"{r['saturation_audio_s_per_s']} ({r['saturation_refused']})"],
        ["admission's measured Piper rate after saturation / noisy neighbour / weights (characters per s)",
         " / ".join(str(v) for v in r["measured_rate_chars_per_s"].values())],
        ["goodput under the flood: audio-s per s, over the closed loop",
         f"{n['goodput_audio_s_per_s']}, {r['goodput_over_saturation']}x"],
        ["weights 3:1: served audio-s (weight 3 / weight 1), ratio",
         f"{w['weight3_audio_s']} / {w['weight1_audio_s']}, {w['ratio']}"],
        ["weights 3:1: refusals (weight 3 / weight 1)", f"{w['weight3_refused']} / {w['weight1_refused']}"],
        [f"burst of {b['requests']}: admitted / refused", f"{b['admitted']} / {b['refused']}"],
        ["burst: refusals answered p50 / p95 / max (ms)",
         f"{b['refused_p50_ms']} / {b['refused_p95_ms']} / {b['refused_max_ms']}"],
        ["burst: admitted first audio p50 / p95 (ms)",
         f"{b['admitted_first_audio_p50_ms']} / {b['admitted_first_audio_p95_ms']}"],
        ["burst: gateway CPU per request answered (ms)", b["gateway_cpu_ms_per_request"]],
    ]
    for label, part in (("1 worker", r.get("one_worker")), (f"{r.get('workers')} workers", r.get("many_workers"))):
        if not part:
            continue
        if "burst" in part:
            pb = part["burst"]
            rows.append([f"{label}: burst admitted / refused, refusals p95 (ms), admitted first audio p95 (ms), "
                         "CPU per request (ms)", f"{pb['admitted']} / {pb['refused']}, {pb['refused_p95_ms']}, "
                         f"{pb['admitted_first_audio_p95_ms']}, {pb['gateway_cpu_ms_per_request']}"])
        for path, c in part["refusal_cost"].items():
            rows.append([f"{label}: {c['requests']} sequential requests on {path}: gateway CPU per request (ms), "
                         "refused, latency p50 / p95 (ms)", f"{c['gateway_cpu_ms_per_refusal']}, {c['refused']}"
                         + (f" ({c['errors']} dropped)" if c.get("errors") else "")
                         + f", {c['latency_p50_ms']} / {c['latency_p95_ms']}"])
    if r.get("paired"):
        rows += _paired_rows(r["paired"])
    rows += [[f"target: {name}", {True: "met", False: "not met", None: "n/a"}[met]]
             for name, met in r["targets"].items()]
    return ("## Fairness through the gateway (bundled Piper voice)\n\n"
            f"Each scenario {r['seconds']:g} s; the quiet tenant one request every {r['interval_s']:g} s; machine load "
            f"average (1 min) before / after: {r['load_average_before_after'][0]} / "
            f"{r['load_average_before_after'][1]}.\n\n"
            + md_table(["", ""], rows))
