"""The clients of `bench fairness` (bench/fairness_stage.py): tenants, requests that record what they got, the
ways clients send them (closed loop, honouring Retry-After, periodic), and the gateway's CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from bench.errors import StageUnavailable
from bench.metrics import percentile
from bench.stack import Stack

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
    answered_s: float = 0.0  # until the response's status and headers (admitted or refused)
    client: int = -1


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
                   path: str = "/v1/synthesize/stream", read_audio: bool = True, who: int = -1) -> Outcome:
    """One request; a refusal waits its answer, an admitted stream is read to its end (or, without
    `read_audio`, left at once: the gateway cancels it)."""
    start = time.monotonic()
    at = start - scenario.started
    body: dict[str, Any] = {"text": text, "format": "pcm"}
    if path == "/v1/audio/speech":
        body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}
    size, first = 0, None
    async with client.stream("POST", f"{base}{path}", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        answered = time.monotonic() - start
        if r.status_code != 200:
            payload = await r.aread()
            if r.status_code != 503 or b"engine_overloaded" not in payload:
                raise RuntimeError(f"{tenant}: status {r.status_code}: {payload[:200]!r}")
            out = Outcome(tenant, at, 503, total_s=time.monotonic() - start,
                          retry_after=float(r.headers.get("Retry-After", "1")), answered_s=answered, client=who)
            scenario.outcomes.append(out)
            return out
        async for piece in r.aiter_raw():
            if piece and first is None:
                first = time.monotonic() - start
            size += len(piece)
            if not read_audio:
                break
    rate = 24000 if path == "/v1/audio/speech" else PCM_RATE
    out = Outcome(tenant, at, 200, first, time.monotonic() - start, size / 2 / rate, answered_s=answered, client=who)
    scenario.outcomes.append(out)
    return out


async def _retrying_client(client, base, key, tenant, texts: Texts, scenario: Scenario, until: float,
                           who: int = -1) -> None:
    while time.monotonic() < until:
        out = await _request(client, base, key, tenant, texts.next(), scenario, who=who)
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


async def _tenant(client, stack: Stack, name: str, ids: dict[str, str] | None = None, **extra: Any) -> str:
    """A new tenant's API key (`ids`, if given, gets its tenant id by name)."""
    r = await client.post(f"{stack.base}/admin/v1/tenants", json={"name": name, **LIMITS, **extra},
                          headers={"Authorization": f"Bearer {stack.admin}"})
    if r.status_code >= 300:
        raise StageUnavailable(f"cannot create tenant {name}: {r.status_code} {r.text[:200]}")
    if ids is not None:
        ids[name] = r.json()["tenant_id"]
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


def _loop_cpu_s(pid: int) -> float:
    """CPU time of the gateway's event loops: the main thread of its process and of each child (uvicorn's
    workers, where there are several): what answering costs the loops, without the processes' other threads
    (the log writer, gRPC's). From the scheduler's nanosecond count (/proc/PID/task/PID/schedstat) where there is
    one: the 10 ms ticks of /proc's stat are a tenth of a burst's whole cost."""
    import psutil

    total = _main_thread_cpu_s(pid)
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children(recursive=True):
            total += _main_thread_cpu_s(child.pid)
    return total


def _main_thread_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        import psutil

        try:
            return next((t.user_time + t.system_time for t in psutil.Process(pid).threads() if t.id == pid), 0.0)
        except psutil.NoSuchProcess:  # a worker that just ended
            return 0.0
