"""`bench engine-fairness`: the engine's fair queue under a flooding tenant, in process (bundled Piper voice).

The pool Piper's Triton model runs (tts_engine.fair_workers.FairWorkers, `--workers` threads over one
PiperEngine) is driven directly, with no network in between, in two modes on the same requests:

- fifo: every request carries the same share, so the pool is a plain FIFO (the engines before
  fair queuing);
- fair: each request carries its tenant's share (tenant, weight).

Scenarios:
- alone: the quiet tenant sends one request every `--interval` s to an idle pool: its first audio.
  The interval is stretched to three times a quiet request's measured service time when the
  machine is slower than that, so the quiet tenant alone never queues behind itself.
- noisy: a flooding tenant keeps `--backlog` requests outstanding (closed loop, far beyond what the
  workers serve at once) while the quiet tenant sends as before: the quiet tenant's first audio,
  and the served audio per second (work-conserving: fair must not serve less).
- weights: two flooding tenants with weights 3 and 1, `--backlog` outstanding each, until
  `--completions` of their requests have finished: served audio seconds per tenant and their ratio.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.metrics import percentile
from bench.results import md_table
from tts_contract.fairness import Share

QUIET_TEXTS = [
    "Your appointment is confirmed for Thursday afternoon.",
    "Thanks for calling, how can I help you today?",
    "I can see two open orders on your account right now.",
    "Let me transfer you to a colleague who can help with that.",
]
FLOOD_TEXTS = [
    "Your order has shipped and should arrive on Thursday, reply if you need to change the address.",
    "We have received your payment of forty dollars and a receipt has been sent to your email.",
    "The branch on Main Street opens at nine in the morning and closes at five on weekdays.",
]
FIFO_SHARE = Share("everyone")


@dataclass
class Served:
    tenant: str
    submitted: float
    first: float | None = None
    finished: float | None = None
    audio_s: float = 0.0


class Rig:
    """One pool over the engine; `fair=False` gives every request the same share (FIFO)."""

    def __init__(self, engine: Any, workers: int, fair: bool, express: int = 0, background_nice: int = 0):
        from tts_engine.fair_workers import FairWorkers

        self.engine = engine
        self.fair = fair
        self.pool = FairWorkers(workers, name="bench-piper", express=express, background_nice=background_nice)
        self.records: list[Served] = []
        self._lock = threading.Lock()
        self._keys = 0
        self._waiting: set[str] = set()

    def submit(self, tenant: str, weight: float, text: str, on_done: Any = None) -> Served:
        record = Served(tenant, time.perf_counter())
        with self._lock:
            self._keys += 1
            key = str(self._keys)
            self._waiting.add(key)
            self.records.append(record)

        def task() -> None:
            with self._lock:
                self._waiting.discard(key)
            for chunk in self.engine.synthesize_stream(text):
                if record.first is None:
                    record.first = time.perf_counter()
                record.audio_s += chunk.size / self.engine.sample_rate
            record.finished = time.perf_counter()
            if on_done is not None:
                on_done()

        share = Share(tenant, weight) if self.fair else FIFO_SHARE
        self.pool.submit(task, share, cost=len(text), key=key)
        return record

    def close(self) -> None:
        with self._lock:
            waiting = list(self._waiting)
        for key in waiting:  # the flood's backlog: withdrawn, not served
            self.pool.cancel(key)
        self.pool.shutdown(120)


class Flood:
    """A tenant that keeps `backlog` requests outstanding: each one served is replaced at once."""

    def __init__(self, rig: Rig, tenant: str, weight: float, backlog: int):
        self.rig, self.tenant, self.weight = rig, tenant, weight
        self.stopping = False
        self._n = 0
        for _ in range(backlog):
            self._send()

    def _send(self) -> None:
        if self.stopping:
            return
        self._n += 1
        self.rig.submit(self.tenant, self.weight, FLOOD_TEXTS[self._n % len(FLOOD_TEXTS)], on_done=self._send)


def _quiet(rig: Rig, count: int, interval: float) -> list[Served]:
    start = time.perf_counter()
    sent = []
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent.append(rig.submit("quiet", 1.0, QUIET_TEXTS[i % len(QUIET_TEXTS)]))
    deadline = time.perf_counter() + 120
    while any(r.finished is None for r in sent) and time.perf_counter() < deadline:
        time.sleep(0.01)
    return sent


def _first_ms(records: list[Served]) -> list[float]:
    return [(r.first - r.submitted) * 1000 for r in records if r.first is not None]


def _served_audio(records: list[Served], tenant: str, start: float, end: float) -> float:
    return sum(r.audio_s for r in records
               if r.tenant == tenant and r.finished is not None and start <= r.finished <= end)


def _p50(values: list[float]) -> float | None:
    value = percentile(values, 50)
    return None if value is None else round(value, 1)


def run_alone(engine: Any, workers: int, count: int, interval: float) -> dict[str, Any]:
    rig = Rig(engine, workers, fair=True)
    try:
        quiet = _quiet(rig, count, interval)
    finally:
        rig.close()
    firsts = _first_ms(quiet)
    return {"quiet_first_ms": firsts, "quiet_first_p50_ms": _p50(firsts)}


def run_noisy(engine: Any, workers: int, fair: bool, backlog: int, count: int, interval: float) -> dict[str, Any]:
    rig = Rig(engine, workers, fair)
    flood = Flood(rig, "flood", 1.0, backlog)
    start = time.perf_counter()
    try:
        quiet = _quiet(rig, count, interval)
        end = time.perf_counter()
    finally:
        flood.stopping = True
        rig.close()
    firsts = _first_ms(quiet)
    return {"quiet_first_ms": firsts, "quiet_first_p50_ms": _p50(firsts),
            "quiet_first_p95_ms": None if not firsts else round(percentile(firsts, 95) or 0, 1),
            "served_audio_per_s": round(sum(_served_audio(rig.records, t, start, end) for t in ("flood", "quiet"))
                                        / (end - start), 2)}


def flood_weighted(rig: Rig, backlog: int, completions: int) -> tuple[list[Any], float]:
    """Two tenants weighted 3:1 ("gold", "silver") each keep `backlog` requests waiting until `completions`
    have finished (10 minutes at most): the first `completions` finished, and the seconds taken. Closes the rig."""
    start = time.perf_counter()
    floods = [Flood(rig, "gold", 3.0, backlog), Flood(rig, "silver", 1.0, backlog)]
    deadline = start + 600
    try:
        while sum(r.finished is not None for r in rig.records) < completions and time.perf_counter() < deadline:
            time.sleep(0.01)
        end = time.perf_counter()
    finally:
        for flood in floods:
            flood.stopping = True
        rig.close()
    done = sorted((r for r in rig.records if r.finished is not None), key=lambda r: r.finished or 0)[:completions]
    return done, end - start


def served_by_weight(done: list[Any]) -> tuple[float, float]:
    """Audio-s served to the weight-3 and the weight-1 tenant."""
    gold, silver = (sum(r.audio_s for r in done if r.tenant == t) for t in ("gold", "silver"))
    return gold, silver


def run_weights(engine: Any, workers: int, fair: bool, backlog: int, completions: int) -> dict[str, Any]:
    done, seconds = flood_weighted(Rig(engine, workers, fair), backlog, completions)
    gold, silver = served_by_weight(done)
    return {"completions": len(done), "gold_requests": sum(r.tenant == "gold" for r in done),
            "gold_audio_s": round(gold, 2), "silver_audio_s": round(silver, 2),
            "ratio": round(gold / silver, 2) if silver else None,
            "served_audio_per_s": round((gold + silver) / seconds, 2)}


def run_engine_fairness_stage(workers: int, backlog: int, count: int, interval: float,
                              completions: int) -> dict[str, Any]:
    from tts_engine.piper import PiperEngine

    engine = PiperEngine.bundled()
    for text in QUIET_TEXTS:  # first runs pay for lazy initialisation: keep them out of the numbers
        engine.synthesize(text)
    started = time.perf_counter()
    for text in QUIET_TEXTS:
        engine.synthesize(text)
    service_s = (time.perf_counter() - started) / len(QUIET_TEXTS)
    interval = max(interval, 3 * service_s)
    alone = run_alone(engine, workers, count, interval)
    noisy = {mode: run_noisy(engine, workers, mode == "fair", backlog, count, interval) for mode in ("fifo", "fair")}
    weights = {mode: run_weights(engine, workers, mode == "fair", backlog, completions) for mode in ("fifo", "fair")}
    base = alone["quiet_first_p50_ms"] or 0.0
    return {
        "engine": "piper", "workers": workers, "backlog": backlog, "quiet_requests": count,
        "quiet_service_s": round(service_s, 3), "interval_s": round(interval, 2), "completions": completions,
        "alone": alone, "noisy": noisy, "weights": weights,
        "quiet_p50_over_alone": {mode: (round(r["quiet_first_p50_ms"] / base, 2)
                                        if base and r["quiet_first_p50_ms"] else None) for mode, r in noisy.items()},
        "goodput_fair_over_fifo": round(noisy["fair"]["served_audio_per_s"] / noisy["fifo"]["served_audio_per_s"], 2)
        if noisy["fifo"]["served_audio_per_s"] else None,
    }


def engine_fairness_markdown(result: dict[str, Any]) -> str:
    noisy, weights, ratio = result["noisy"], result["weights"], result["quiet_p50_over_alone"]
    rows = [["quiet alone", result["alone"]["quiet_first_p50_ms"], "", "1.0", "", ""]]
    for mode in ("fifo", "fair"):
        rows.append([f"quiet + flood ({mode})", noisy[mode]["quiet_first_p50_ms"], noisy[mode]["quiet_first_p95_ms"],
                     ratio[mode], noisy[mode]["served_audio_per_s"], ""])
    for mode in ("fifo", "fair"):
        rows.append([f"weights 3:1 ({mode})", "", "", "", weights[mode]["served_audio_per_s"], weights[mode]["ratio"]])
    return (
        f"# Engine fairness (Piper in process, {result['workers']} workers, flood backlog {result['backlog']})\n\n"
        f"Quiet tenant: {result['quiet_requests']} requests, one every {result['interval_s']} s (one alone takes "
        f"{result['quiet_service_s']} s); weights: the first {result['completions']} completions.\n\n"
        + md_table(["scenario", "quiet first audio p50 ms", "p95 ms", "p50 / alone", "served audio s/s",
                    "gold:silver audio"], rows)
        + f"\n\nGoodput under the flood, fair / fifo: {result['goodput_fair_over_fifo']}\n"
    )
