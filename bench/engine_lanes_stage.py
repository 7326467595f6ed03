"""`bench engine-lanes`: Piper's worker pool as served against the pool as it was, alternating in one process.

The same scenarios as `bench engine-fairness` (bench/engine_fairness_stage.py), all with fair
queuing, for pool variants run round by round in rotating order so that the machine's changing
load falls on every variant alike:

- before: onnxruntime's default session options (an intra-op pool as wide as the machine,
  spinning), 4 workers, no express lane: the pool before the express lane;
- one-thread: each inference on its worker's own thread, no spinning (tts_engine/piper/session.py);
- express: one-thread plus one express thread for tenants within their share and the regular
  workers 10 nice steps lower (tts_engine/fair_workers.py): the served configuration.

Per variant and round: the quiet tenant's first audio alone and beside a flood (`--backlog`
outstanding), the audio served per second under the flood, the process's CPU seconds per audio
second served (read from the kernel: what spinning costs), and the weights 3:1 scenario.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.engine_fairness_stage import (
    QUIET_TEXTS,
    Flood,
    Rig,
    _first_ms,
    _p50,
    _quiet,
    _served_audio,
    flood_weighted,
    served_by_weight,
)
from bench.results import md_table


@dataclass(frozen=True)
class Variant:
    name: str
    op_threads: int
    workers: int
    express: int
    background_nice: int


VARIANTS = {
    "before": Variant("before", op_threads=0, workers=4, express=0, background_nice=0),
    "one-thread": Variant("one-thread", op_threads=1, workers=4, express=0, background_nice=0),
    "express": Variant("express", op_threads=1, workers=4, express=1, background_nice=10),
}


def _rig(engine: Any, variant: Variant) -> Rig:
    return Rig(engine, variant.workers, fair=True, express=variant.express, background_nice=variant.background_nice)


def _alone(engine: Any, variant: Variant, count: int, interval: float) -> float | None:
    rig = _rig(engine, variant)
    try:
        quiet = _quiet(rig, count, interval)
    finally:
        rig.close()
    return _p50(_first_ms(quiet))


def _noisy(engine: Any, variant: Variant, backlog: int, count: int, interval: float) -> dict[str, Any]:
    rig = _rig(engine, variant)
    flood = Flood(rig, "flood", 1.0, backlog)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        quiet = _quiet(rig, count, interval)
        end, cpu_end = time.perf_counter(), time.process_time()
    finally:
        flood.stopping = True
        rig.close()
    served = sum(_served_audio(rig.records, t, start, end) for t in ("flood", "quiet"))
    return {"quiet_first_p50_ms": _p50(_first_ms(quiet)), "served_audio_per_s": round(served / (end - start), 2),
            "cpu_s_per_audio_s": round((cpu_end - cpu_start) / served, 4) if served else None,
            "express_runs": rig.pool.express_runs}


def _weights(engine: Any, variant: Variant, backlog: int, completions: int) -> float | None:
    gold, silver = served_by_weight(flood_weighted(_rig(engine, variant), backlog, completions)[0])
    return round(gold / silver, 2) if silver else None


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def run_engine_lanes_stage(variants: list[str], rounds: int, backlog: int, count: int, interval: float,
                           completions: int) -> dict[str, Any]:
    from tts_engine.piper import PiperEngine

    chosen = [VARIANTS[name] for name in variants]
    engines = {t: PiperEngine.bundled(op_threads=t) for t in sorted({v.op_threads for v in chosen})}
    service = []
    for engine in engines.values():
        for text in QUIET_TEXTS:  # first runs pay for lazy initialisation
            engine.synthesize(text)
        started = time.perf_counter()
        for text in QUIET_TEXTS:
            engine.synthesize(text)
        service.append((time.perf_counter() - started) / len(QUIET_TEXTS))
    # The quiet tenant alone must never queue behind itself, however slow the machine is now.
    interval = max(interval, 3 * max(service))
    per_round: list[dict[str, Any]] = []
    load = [os.getloadavg()[0]]
    for r in range(rounds):
        order = chosen[r % len(chosen):] + chosen[:r % len(chosen)]
        row: dict[str, Any] = {}
        for variant in order:
            engine = engines[variant.op_threads]
            alone = _alone(engine, variant, count, interval)
            noisy = _noisy(engine, variant, backlog, count, interval)
            row[variant.name] = {"alone_p50_ms": alone, **noisy,
                                 "over_alone": round(noisy["quiet_first_p50_ms"] / alone, 2)
                                 if alone and noisy["quiet_first_p50_ms"] else None,
                                 "weights_ratio": _weights(engine, variant, backlog, completions)}
        per_round.append(row)
        load.append(os.getloadavg()[0])
    summary = {}
    for variant in chosen:
        rows = [row[variant.name] for row in per_round]
        summary[variant.name] = {key: _median([row[key] for row in rows])
                                 for key in ("alone_p50_ms", "quiet_first_p50_ms", "over_alone", "served_audio_per_s",
                                             "cpu_s_per_audio_s", "weights_ratio")}
    base = chosen[0].name
    paired = {v.name: {key: _median([row[v.name][key] / row[base][key] if row[base][key] and row[v.name][key]
                                     else None for row in per_round])
                       for key in ("quiet_first_p50_ms", "served_audio_per_s", "cpu_s_per_audio_s")}
              for v in chosen[1:]}
    return {"engine": "piper", "variants": [asdict(v) for v in chosen], "rounds": rounds, "backlog": backlog,
            "quiet_requests": count, "interval_s": round(interval, 2),
            "quiet_service_s": [round(x, 3) for x in service], "completions": completions,
            "load_average_1m": [round(x, 2) for x in load], "per_round": per_round, "median": summary,
            "paired_over_" + base: paired}


def engine_lanes_markdown(result: dict[str, Any]) -> str:
    base = result["variants"][0]["name"]
    paired = result["paired_over_" + base]
    rows = []
    for variant in result["variants"]:
        m, p = result["median"][variant["name"]], paired.get(variant["name"], {})
        rows.append([variant["name"], variant["op_threads"], variant["express"], variant["background_nice"],
                     m["alone_p50_ms"], m["quiet_first_p50_ms"], m["over_alone"], p.get("quiet_first_p50_ms", ""),
                     m["served_audio_per_s"], p.get("served_audio_per_s", ""), m["cpu_s_per_audio_s"],
                     p.get("cpu_s_per_audio_s", ""), m["weights_ratio"]])
    return (
        f"# Piper's pool: express lane and session options (in process, fair queuing, flood backlog "
        f"{result['backlog']})\n\n"
        f"{result['rounds']} rounds, variants alternating; quiet tenant: {result['quiet_requests']} requests one every "
        f"{result['interval_s']} s (at least 3x its service time alone); weights: the first {result['completions']} "
        "completions. Medians over rounds; "
        f"'/ {base}': median of the per-round ratios. Load average (1 min) per round: "
        f"{', '.join(str(x) for x in result['load_average_1m'])}.\n\n"
        + md_table(["variant", "op threads", "express", "nice", "quiet alone p50 ms", "beside flood p50 ms",
                    "/ alone", f"/ {base}", "served audio s/s", f"/ {base}", "CPU s per audio s", f"/ {base}",
                    "weights 3:1"], rows)
        + "\n"
    )
