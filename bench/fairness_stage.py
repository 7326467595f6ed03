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
import os
import time
from typing import Any

from bench.cli_args import FAIRNESS_SCENARIOS
from bench.errors import StageUnavailable
from bench.fairness_clients import (
    Scenario,
    Texts,
    _closed_loop,
    _p,
    _periodic,
    _retrying_client,
    _served,
    _service_rate,
    _tenant,
)
from bench.fairness_refusals import BARE, WORKERS, _burst, _paired, _second_gateway_runs
from bench.fairness_weights import weights_rows, weights_scenario
from bench.metrics import percentile
from bench.results import md_table
from bench.stack import Stack, running_stack


async def _run(stack: Stack, args, log) -> dict[str, Any]:
    import httpx

    texts = Texts()
    clients = args.flood
    connections = clients + args.burst + 20
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    result: dict[str, Any] = {"saturate_clients": args.saturate, "flood_clients": clients, "seconds": args.seconds,
                              "interval_s": args.interval, "quiet_requests": args.quiet_requests,
                              "scenarios": [s for s in FAIRNESS_SCENARIOS if s in args.scenarios]}
    want = args.scenarios
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        ids: dict[str, str] = {}
        keys = {name: await _tenant(client, stack, name, ids, **extra) for name, extra in (
            ("A", {}), ("B", {}), ("C", {}), ("P", {"weight": 3.0}), ("S", {"weight": 1.0}))}
        base = stack.base
        warm = Scenario()  # model warm-up and the first rate measurement
        await asyncio.gather(*(_closed_loop(client, base, keys["C"], "C", texts, warm, time.monotonic() + 3)
                               for _ in range(args.saturate)))
        rates: dict[str, float] = {}
        alone_first: list[float] = []
        sat_audio = None

        if "quiet" in want:
            log("  quiet tenant alone")
            alone = Scenario()
            await _periodic(client, base, keys["B"], "B", texts, alone, args.quiet_requests, args.interval)
            alone_first = [o.first_s or 0 for o in _served(alone, "B")]
            result["quiet_alone_first_audio_p50_ms"] = _p(alone_first, 50)

        if "saturation" in want:
            log(f"  saturation: {args.saturate} clients in a closed loop for {args.seconds:g} s")
            sat = Scenario()
            until = time.monotonic() + args.seconds
            # Refused ones (if any: then the loop is past saturation) honour Retry-After, not a refusal storm.
            await asyncio.gather(*(_retrying_client(client, base, keys["C"], "C", texts, sat, until)
                                   for _ in range(args.saturate)))
            sat_audio = sum(o.audio_s for o in _served(sat, "C", args.seconds)) / args.seconds
            result["saturation_audio_s_per_s"] = round(sat_audio, 2)
            result["saturation_refused"] = sum(1 for o in sat.outcomes if o.status == 503)
            rates["saturation"] = await _service_rate(client, base)

        if "noisy" in want:
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
            alone_p50, noisy_p50 = percentile(alone_first, 50), percentile(noisy_first, 50)
            result["noisy"] = {
                "quiet_requests": len(noisy_b), "quiet_refused": sum(1 for o in noisy_b if o.status == 503),
                "quiet_first_audio_p50_ms": _p(noisy_first, 50), "quiet_first_audio_p95_ms": _p(noisy_first, 95),
                "quiet_p50_over_alone": round(noisy_p50 / alone_p50, 2) if alone_p50 and noisy_p50 else None,
                "flood_served": len(_served(noisy, "A")), "flood_refused": len(a_refused),
                "flood_refusal_p95_ms": _p(a_refused, 95), "goodput_audio_s_per_s": round(goodput, 2)}
            result["goodput_over_saturation"] = round(goodput / sat_audio, 2) if sat_audio else None

        if "weights" in want:
            log(f"  weights 3:1: {clients // 2} clients each, honouring Retry-After")
            result["weighted"] = await weights_scenario(client, stack, keys, ids, texts, clients, args.seconds)
            rates["weighted"] = await _service_rate(client, base)

        if "burst" in want:
            await asyncio.sleep(3.0)  # the engine idle again
            log(f"  burst of {args.burst}")
            result["burst"] = await _burst(client, stack, texts, args.burst, "1")
    result["measured_rate_chars_per_s"] = rates
    return result


def run_fairness_stage(args, log=print) -> dict[str, Any]:
    args.scenarios = args.scenarios or frozenset(FAIRNESS_SCENARIOS)
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
            if "refusals" in args.scenarios:
                result["one_worker"] = asyncio.run(_second_gateway_runs(stack, args, log, {}, burst=False))
            if args.workers > 1 and "refusals" in args.scenarios:
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
    """Each target met or not (None: not measured, or its scenario not run)."""
    n, w, b = r.get("noisy") or {}, r.get("weighted") or {}, r.get("burst") or {}

    def at_most(value: float | None, bound: float, strict: bool = False) -> bool | None:
        return None if value is None else (value < bound if strict else value <= bound)

    ratio, goodput = w.get("ratio"), r.get("goodput_over_saturation")
    return {
        "noisy neighbour: the quiet tenant is never refused": n["quiet_refused"] == 0 if n else None,
        "noisy neighbour: quiet first audio p50 <= 1.5x alone": at_most(n.get("quiet_p50_over_alone"), 1.5),
        "weights 3:1: served audio ratio within 3 +- 15 %": None if ratio is None else abs(ratio / 3 - 1) <= 0.15,
        "goodput at overload >= 0.9x saturation": None if goodput is None else goodput >= 0.9,
        "burst: refusals p95 < 50 ms": at_most(b.get("refused_p95_ms"), 50, strict=True),
        "burst: admitted first audio p95 < 2 s": at_most(b.get("admitted_first_audio_p95_ms"), 2000, strict=True),
    }


def _paired_rows(paired: dict[str, Any]) -> list[list[Any]]:
    rows = []
    labels = ["this checkout", "compared checkout", BARE] + [k for k in paired if k.startswith(WORKERS)]
    for label in labels:
        if label not in paired:  # recorded before the floor ran beside the checkouts
            continue
        p = paired[label]
        rows.append([f"{label} (median of {paired['rounds']} alternating rounds): share of the sequential requests "
                     "refused, CPU per refusal (ms), refusal p50 (ms), burst refusals p95 (ms), burst CPU per "
                     "request (ms)", f"{p['share_refused']}, {p['cpu_ms_per_refusal']}, {p['refusal_p50_ms']}, "
                     f"{p['burst_refusal_p95_ms']}, {p['burst_cpu_ms_per_request']}"])
        if "loop_cpu_ms_per_refusal" in p:  # recorded before the loop's own CPU was read
            rows.append([f"{label}: event loop's CPU per refusal, sequential / in the burst (ms)",
                         f"{p['loop_cpu_ms_per_refusal']} / {p['burst_loop_cpu_ms_per_request']}"])
        if "loop_cpu_ms_per_refusal_net" in p:  # recorded before the held stream's relaying was subtracted
            rows.append([f"{label}: event loop's CPU per sequential refusal, less what it spends as long with no "
                         "request (relaying the held stream)", p["loop_cpu_ms_per_refusal_net"]])
        if "floor_404_cpu_ms" in p:
            rows.append([f"{label}: CPU per 404 (no route, ms)", p["floor_404_cpu_ms"]])
    if paired.get("held_stream_dropped"):
        rows.append(["held long streams dropped by the server (replaced)", "; ".join(paired["held_stream_dropped"])])
    return rows


def fairness_markdown(r: dict[str, Any]) -> str:
    if r.get("only_paired"):
        return ("## Refusal cost: this checkout against another, alternating on one Triton\n\n"
                f"Compared: `{r['paired']['compared']}`; machine load average (1 min) before / after: "
                f"{r['load_average_before_after'][0]} / {r['load_average_before_after'][1]}.\n\n"
                + md_table(["", ""], _paired_rows(r["paired"])))
    rows: list[list[Any]] = []
    if "quiet_alone_first_audio_p50_ms" in r:
        rows.append(["quiet tenant alone: first audio p50 (ms)", r["quiet_alone_first_audio_p50_ms"]])
    if n := r.get("noisy"):
        rows += [
            [f"noisy neighbour ({r['flood_clients']} flooding clients): quiet tenant refused / requests",
             f"{n['quiet_refused']} / {n['quiet_requests']}"],
            ["noisy neighbour: quiet first audio p50 / p95 (ms), p50 over alone",
             f"{n['quiet_first_audio_p50_ms']} / {n['quiet_first_audio_p95_ms']}, {n['quiet_p50_over_alone']}x"],
            ["noisy neighbour: flood served / refused, its refusals p95 (ms)",
             f"{n['flood_served']} / {n['flood_refused']}, {n['flood_refusal_p95_ms']}"]]
    if "saturation_audio_s_per_s" in r:
        rows.append([f"closed loop of {r['saturate_clients']} clients: audio-s per s (its refusals)",
                     f"{r['saturation_audio_s_per_s']} ({r['saturation_refused']})"])
    rows.append([f"admission's measured Piper rate after {' / '.join(r['measured_rate_chars_per_s'])} (characters "
                 "per s)", " / ".join(str(v) for v in r["measured_rate_chars_per_s"].values())])
    if n:
        rows.append(["goodput under the flood: audio-s per s, over the closed loop",
                     f"{n['goodput_audio_s_per_s']}, {r.get('goodput_over_saturation')}x"])
    if w := r.get("weighted"):
        rows += weights_rows(w)
    if b := r.get("burst"):
        rows += [
            [f"burst of {b['requests']}: admitted / refused", f"{b['admitted']} / {b['refused']}"],
            ["burst: refusals answered p50 / p95 / max (ms)",
             f"{b['refused_p50_ms']} / {b['refused_p95_ms']} / {b['refused_max_ms']}"],
            ["burst: admitted first audio p50 / p95 (ms)",
             f"{b['admitted_first_audio_p50_ms']} / {b['admitted_first_audio_p95_ms']}"],
            ["burst: gateway CPU per request answered (ms)", b["gateway_cpu_ms_per_request"]]]
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
        if part.get("held_stream_dropped"):
            rows.append([f"{label}: the held long stream dropped by the server (replaced)",
                         "; ".join(part["held_stream_dropped"])])
    if r.get("paired"):
        rows += _paired_rows(r["paired"])
    rows += [[f"target: {name}", {True: "met", False: "not met", None: "n/a"}[met]]
             for name, met in r["targets"].items()]
    return ("## Fairness through the gateway (bundled Piper voice)\n\n"
            f"Scenarios: {', '.join(r.get('scenarios', FAIRNESS_SCENARIOS))}; each {r['seconds']:g} s; the quiet "
            f"tenant one request every {r['interval_s']:g} s; machine load "
            f"average (1 min) before / after: {r['load_average_before_after'][0]} / "
            f"{r['load_average_before_after'][1]}.\n\n"
            + md_table(["", ""], rows))
