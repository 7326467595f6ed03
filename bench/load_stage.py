"""`bench load`: many concurrent streams through the real gateway and Triton, held for a while.

N clients each loop over `POST /v1/synthesize/stream` (distinct texts: no cache hits) for the
duration, reading every stream to its end; a request that began before the deadline runs to its
end. A client refused with 503 `engine_overloaded` (admission control) waits the Retry-After it
was given and tries again, as a well-behaved caller does. The run passes only when:

- every response was a 200 carrying audio or an admission refusal (no other error, no cut stream);
- the gateway's usage records for the tenant equal the requests served, exactly (refusals cost
  nothing and are not recorded), and its shed counter equals the refusals received;
- nothing leaked: active streams and the engines' admitted backlog back to 0, asyncio tasks and
  open file descriptors of the gateway process back to their baseline (a small allowance),
  memory growth bounded.

It reports, beside the checks, the targets for 10x overload: admitted streams' p95 time to first
audio under 2 s and refusals answered in under 50 ms (timings are measurements, not pass/fail).

Triton and the gateway are real processes on free ports, the store is the embedded default. For
XTTS the tiny artifact serves, and the voice is a clone of a few seconds of the bundled voice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.errors import StageUnavailable
from bench.metrics import percentile
from bench.results import REPO_ROOT, md_table
from bench.stack import running_stack
from control_plane.settings import Settings

LIMITS = {"requests_per_minute": 1_000_000, "requests_per_hour": 10_000_000, "requests_per_day": 100_000_000,
          "monthly_characters": 10**11, "max_concurrent_streams": 10_000}
FD_ALLOWANCE = 8  # pooled connections (store, Triton channel) may settle a little differently
RSS_GROWTH_LIMIT_MB = 150.0
SETTLE_S = 3.0  # after the warm-up, before the baseline
# After the run, the gateway is polled until it is back to its baseline (streams, backlog, tasks, descriptors)
# or this long has passed: a loaded machine closes 200 clients' sockets late, and a leak never comes back.
SETTLE_TIMEOUT_S = 90.0
SETTLE_POLL_S = 0.5
LOAD_XTTS_TOKENS = 16
MAX_BACKOFF_S = 60.0  # a refused client waits its Retry-After, at most this (as the OpenAI SDK does)
TTFA_TARGET_P95_S = 2.0
STEADY_AFTER_S = 10.0  # "steady state": requests begun this long after the 200 clients all started at once
REFUSAL_TARGET_P95_S = 0.05


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


class _Gateway:
    """The control plane as a real process, and what the run watches in it."""

    def __init__(self, base: str, admin: str, pid: int):
        import psutil

        self.base = base
        self.admin = admin
        self.process = psutil.Process(pid)

    async def snapshot(self, client) -> dict[str, float]:
        text = (await client.get(f"{self.base}/metrics")).text
        memory = self.process.memory_info()
        return {"fds": float(self.process.num_fds()), "sockets": float(len(self.process.net_connections("all"))),
                "rss_mb": round(memory.rss / 2**20, 1),
                "tasks": _metric(text, "tts_event_loop_tasks"), "active_streams": _metric(text, "tts_active_streams"),
                "backlog_chars": _metric(text, "tts_engine_backlog_characters"),
                "shed": _metric(text, 'tts_admission_decisions_total{engine="piper",outcome="shed"}')
                + _metric(text, 'tts_admission_decisions_total{engine="xtts",outcome="shed"}')}


async def _one(client, url: str, headers: dict[str, str], text: str, voice_id: str | None) -> dict[str, Any]:
    body = {"text": text, "format": "pcm", **({"voice_id": voice_id} if voice_id else {})}
    start = time.perf_counter()
    first, size = None, 0
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code == 503 and b"engine_overloaded" in (body_bytes := await response.aread()):
                return {"ok": False, "shed": True, "refused_s": time.perf_counter() - start,
                        "retry_after": float(response.headers.get("Retry-After", "1"))}
            if response.status_code != 200:
                return {"ok": False, "error": f"status {response.status_code}: {body_bytes[:120]!r}"}
            async for piece in response.aiter_raw():
                if piece:
                    first = first if first is not None else time.perf_counter() - start
                    size += len(piece)
    except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the run
        return {"ok": False, "error": type(error).__name__}
    if size == 0:
        return {"ok": False, "error": "empty stream"}
    return {"ok": True, "ttfa": first, "total": time.perf_counter() - start, "bytes": size}


async def _drive(base: str, key: str, voice_id: str | None, streams: int, seconds: float, log) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    url = f"{base}/v1/synthesize/stream"
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900.0), limits=limits) as client:

        async def worker(w: int) -> None:
            i = 0
            while time.monotonic() < deadline:
                at = time.monotonic() - started
                result = await _one(client, url, headers, f"Load test {w}, request {i}, all good.", voice_id)
                results.append({**result, "at": at})
                i += 1
                if result.get("shed"):
                    await asyncio.sleep(min(result["retry_after"], MAX_BACKOFF_S))

        started = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(streams)))
        wall = time.monotonic() - started
    log(f"  {len(results)} requests in {wall:.1f} s")
    return {"results": results, "wall_s": wall}


async def _run(base: str, admin: str, pid: int, model: str, streams: int, seconds: float, log) -> dict[str, Any]:
    import httpx

    gateway = _Gateway(base, admin, pid)
    async with httpx.AsyncClient(timeout=300) as client:
        made = await client.post(f"{base}/admin/v1/tenants", json={"name": "load", **LIMITS},
                                 headers={"Authorization": f"Bearer {admin}"})
        if made.status_code >= 300:
            raise StageUnavailable(f"cannot create a tenant: {made.status_code} {made.text[:300]}")
        key = made.json()["api_key"]
        voice_id = None
        if model == "xtts":
            voice_id = await _clone_voice(client, base, key)
        # Warm-up: first connections, model warm-up, first-use allocations; then the baseline.
        await _drive(base, key, voice_id, min(streams, 16), 3.0, lambda *_: None)
        await asyncio.sleep(SETTLE_S)
        before = await gateway.snapshot(client)
        usage_before = await _requests_recorded(client, base, key)
    run = await _drive(base, key, voice_id, streams, seconds, log)
    async with httpx.AsyncClient(timeout=60) as client:
        after, run["settle_s"] = await _settled(gateway, client, before)
        usage_after = await _requests_recorded(client, base, key)
    return _summarise(run, before, after, usage_after - usage_before, model, streams, seconds)


def _back_to_baseline(before: dict[str, float], now: dict[str, float]) -> bool:
    return (now["active_streams"] == 0 and now["backlog_chars"] == 0 and now["tasks"] <= before["tasks"]
            and now["fds"] <= before["fds"] + FD_ALLOWANCE)


async def _settled(gateway: _Gateway, client, before: dict[str, float]) -> tuple[dict[str, float], float]:
    """The gateway's state once it is back to its baseline, or when SETTLE_TIMEOUT_S has passed (the checks
    then say what stayed), and the seconds that took."""
    start = time.perf_counter()
    while True:
        now = await gateway.snapshot(client)
        waited = time.perf_counter() - start
        if _back_to_baseline(before, now) or waited >= SETTLE_TIMEOUT_S:
            return now, round(waited, 1)
        await asyncio.sleep(SETTLE_POLL_S)


async def _clone_voice(client, base: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    text = ("The quick brown fox jumps over the lazy dog. A reference recording should be clear and steady. "
            "Speak naturally, at an even pace.")
    speech = await client.post(f"{base}/v1/synthesize", json={"text": text, "format": "wav"}, headers=headers)
    if speech.status_code != 200:
        raise StageUnavailable(f"cannot synthesise the reference: {speech.status_code} {speech.text[:200]}")
    made = await client.post(f"{base}/v1/voices/upload", headers=headers, data={"name": "load", "language": "en"},
                             files={"audio": ("ref.wav", speech.content, "audio/wav")})
    if made.status_code != 201:
        raise StageUnavailable(f"cannot clone the voice: {made.status_code} {made.text[:200]}")
    return made.json()["voice_id"]


async def _requests_recorded(client, base: str, key: str) -> int:
    r = await client.get(f"{base}/v1/tenant/usage", headers={"Authorization": f"Bearer {key}"})
    return int(r.json()["totals"]["requests"])


def _summarise(run: dict[str, Any], before: dict, after: dict, recorded: int, model: str, streams: int,
               seconds: float) -> dict[str, Any]:
    results = run["results"]
    ok = [r for r in results if r["ok"]]
    shed = [r for r in results if r.get("shed")]
    errors: dict[str, int] = {}
    for r in results:
        if not r["ok"] and not r.get("shed"):
            errors[r["error"]] = errors.get(r["error"], 0) + 1

    def ms(values: list[float], q: float) -> float | None:
        p = percentile(values, q)
        return None if p is None else round(p * 1000, 1)

    ttfa, total = [r["ttfa"] for r in ok], [r["total"] for r in ok]
    refused = [r["refused_s"] for r in shed]
    steady_ttfa = [r["ttfa"] for r in ok if r["at"] >= STEADY_AFTER_S]
    steady_refused = [r["refused_s"] for r in shed if r["at"] >= STEADY_AFTER_S]
    shed_counted = after["shed"] - before["shed"]
    # Each check the run makes, and what its failure says; `checks` counts them for the summary line.
    checks = [
        (not errors, "; ".join(f"{n} x {e}" for e, n in errors.items())),
        (bool(ok), "no request was served"),
        (recorded == len(ok), f"usage records {recorded} != requests served {len(ok)}"),
        (shed_counted == len(shed), f"the gateway counted {shed_counted:.0f} refusals, clients got {len(shed)}"),
        (after["active_streams"] == 0, f"{after['active_streams']:.0f} streams still active after the run"),
        (after["backlog_chars"] == 0, f"{after['backlog_chars']:.0f} characters still counted as engine backlog"),
        (after["tasks"] <= before["tasks"], f"asyncio tasks {before['tasks']:.0f} -> {after['tasks']:.0f}"),
        (after["fds"] <= before["fds"] + FD_ALLOWANCE,
         f"open files {before['fds']:.0f} -> {after['fds']:.0f} (sockets {before['sockets']:.0f} -> "
         f"{after['sockets']:.0f}) after {run['settle_s']:.0f} s"),
        (after["rss_mb"] - before["rss_mb"] <= RSS_GROWTH_LIMIT_MB,
         f"memory grew {after['rss_mb'] - before['rss_mb']:.0f} MB"),
    ]
    problems = [message for ok_, message in checks if not ok_]
    rate = 22050 if model == "piper" else 24000
    return {
        "model": model, "streams": streams, "seconds": seconds, "wall_s": round(run["wall_s"], 1),
        "requests": len(results), "ok": len(ok), "shed": len(shed), "errors": errors, "usage_records": recorded,
        "requests_per_s": round(len(results) / run["wall_s"], 2),
        "audio_seconds": round(sum(r["bytes"] for r in ok) / 2 / rate, 1),
        "ttfa_p50_ms": ms(ttfa, 50), "ttfa_p95_ms": ms(ttfa, 95), "ttfa_p99_ms": ms(ttfa, 99),
        "total_p50_ms": ms(total, 50), "total_p95_ms": ms(total, 95), "total_p99_ms": ms(total, 99),
        "refused_p50_ms": ms(refused, 50), "refused_p95_ms": ms(refused, 95), "refused_max_ms": ms(refused, 100),
        "settle_s": run["settle_s"],
        "steady_after_s": STEADY_AFTER_S, "steady_served": len(steady_ttfa), "steady_refused": len(steady_refused),
        "steady_ttfa_p50_ms": ms(steady_ttfa, 50), "steady_ttfa_p95_ms": ms(steady_ttfa, 95),
        "steady_refused_p50_ms": ms(steady_refused, 50), "steady_refused_p95_ms": ms(steady_refused, 95),
        "targets": {
            "admitted p95 time to first audio < 2 s": None if not ttfa else percentile(ttfa, 95) < TTFA_TARGET_P95_S,
            "refusals p95 < 50 ms": None if not refused else percentile(refused, 95) < REFUSAL_TARGET_P95_S,
            "steady state: admitted p95 time to first audio < 2 s":
                None if not steady_ttfa else percentile(steady_ttfa, 95) < TTFA_TARGET_P95_S,
            "steady state: refusals p95 < 50 ms":
                None if not steady_refused else percentile(steady_refused, 95) < REFUSAL_TARGET_P95_S,
        },
        "gateway_before": before, "gateway_after": after, "problems": problems,
        "checks_passed": sum(1 for ok_, _ in checks if ok_), "checks_failed": len(problems),
    }


def run_load_stage(args, log=print) -> dict[str, Any]:
    model, streams, seconds = args.engine, args.streams, args.seconds
    threads = str(getattr(args, "threads", None) or 1)
    triton_env: dict[str, str] = {}
    models = ["piper"]
    if model == "xtts":
        from export.xtts import export_tiny

        # The tiny XTTS with 16 tokens (0.7 s of audio) per sentence: on two CPU cores its vocoder
        # serves ~2 such streams a second, so 200 streams exercise the serving path for minutes.
        artifact = REPO_ROOT / ".cache" / "models" / f"xtts-tiny-{LOAD_XTTS_TOKENS}"
        if not (artifact / "manifest.json").is_file():
            export_tiny(artifact, seed=0, max_audio_tokens=LOAD_XTTS_TOKENS)
        models += ["xtts", "xtts_condition"]
        # Every stream gets a decode row at once: streams queue on the vocoder, not for a row.
        # 200 streams on one CPU vocoder queue for minutes: no stream may be dropped for waiting.
        triton_env.update({"XTTS_MODEL_PATH": str(artifact), "XTTS_MAX_BATCH_SIZE": str(max(32, streams)),
                           "XTTS_CHUNK_TIMEOUT_S": "900"})
    api_env = {"MAX_CONCURRENT_STREAMS": str(streams * 2), "TRITON_REQUEST_TIMEOUT_S": "900"}
    # Admission control as configured by --admission-max-wait, else the gateway's own default.
    max_wait = getattr(args, "admission_max_wait", None)
    api_env["ADMISSION_MAX_WAIT_S"] = str(max_wait) if max_wait is not None else str(
        Settings.model_fields["admission_max_wait_s"].default)
    with running_stack("load", models, threads, triton_env, api_env) as stack:
        result = asyncio.run(_run(stack.base, stack.admin, stack.api_pid, model, streams, seconds, log))
    result["admission_max_wait_s"] = float(api_env["ADMISSION_MAX_WAIT_S"])
    log(f"  {result['ok']} served, {result['shed']} refused of {result['requests']}; admitted TTFA p50/p95 "
        f"{result['ttfa_p50_ms']}/{result['ttfa_p95_ms']} ms; refusals p50/p95 {result['refused_p50_ms']}/"
        f"{result['refused_p95_ms']} ms; problems: {result['problems'] or 'none'}")
    return result


def load_markdown(result: dict[str, Any]) -> str:
    b, a = result["gateway_before"], result["gateway_after"]
    rows = [
        ["requests served / refused (503, retried after Retry-After) / all",
         f"{result['ok']} / {result['shed']} / {result['requests']}"],
        ["errors", result["errors"] or "none"],
        ["admission bound (ADMISSION_MAX_WAIT_S)", f"{result['admission_max_wait_s']:g} s"],
        ["usage records", result["usage_records"]],
        ["requests per second", result["requests_per_s"]],
        ["audio produced (s)", result["audio_seconds"]],
        ["time to first audio p50 / p95 / p99 (ms)", f"{result['ttfa_p50_ms']} / {result['ttfa_p95_ms']} / "
                                                    f"{result['ttfa_p99_ms']}"],
        ["whole stream p50 / p95 / p99 (ms)", f"{result['total_p50_ms']} / {result['total_p95_ms']} / "
                                              f"{result['total_p99_ms']}"],
        ["refusal answered in p50 / p95 / max (ms)", f"{result['refused_p50_ms']} / {result['refused_p95_ms']} / "
                                                     f"{result['refused_max_ms']}"],
        [f"steady state (begun {result['steady_after_s']:g} s or more after the start): served / refused",
         f"{result['steady_served']} / {result['steady_refused']}"],
        ["steady state: time to first audio p50 / p95 (ms)",
         f"{result['steady_ttfa_p50_ms']} / {result['steady_ttfa_p95_ms']}"],
        ["steady state: refusal answered in p50 / p95 (ms)",
         f"{result['steady_refused_p50_ms']} / {result['steady_refused_p95_ms']}"],
        ["gateway open files (of them sockets) before / after",
         f"{b['fds']:.0f} ({b.get('sockets', 0):.0f}) / {a['fds']:.0f} ({a.get('sockets', 0):.0f})"],
        ["seconds after the run until the gateway was back to its baseline", f"{result.get('settle_s', '')}"],
        ["gateway asyncio tasks before / after", f"{b['tasks']:.0f} / {a['tasks']:.0f}"],
        ["gateway RSS MB before / after", f"{b['rss_mb']} / {a['rss_mb']}"],
        ["active streams after", f"{a['active_streams']:.0f}"],
        ["problems", "; ".join(result["problems"]) or "none"],
    ]
    rows += [[f"target: {name}", {True: "met", False: "not met", None: "n/a"}[met]]
             for name, met in result["targets"].items()]
    return (f"## Load: {result['streams']} concurrent streams for {result['seconds']:.0f} s ({result['model']})\n\n"
            f"Wall {result['wall_s']} s (requests begun before the deadline run to their end).\n\n"
            + md_table(["", ""], rows))
