"""`bench fairness`'s weights scenario: two flooding tenants with weights 3 and 1, each with half of the flood's
clients honouring Retry-After, and what explains the ratio they are served in.

Beside the served audio it records, per tenant: the requests it had running in the gateway on average (from
each client's answer to its stream's end), the gap between a client's stream ending and its next request being
answered (while its share of the engine stands empty), the Retry-After it was told, how many of its clients were
ever admitted, the gateway's own admission decisions (`tts_tenant_admission_decisions_total`), and from Triton,
how many of its requests Piper's fair queue made wait for a worker (`tts_engine_queue_wait_seconds`, by weight):
whether the engine's fair queue or the gateway's admission set the ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.fairness_clients import Outcome, Scenario, Texts, _retrying_client, _served
from bench.metrics import percentile

TENANTS = {"P": 3.0, "S": 1.0}
WAITED_S = "0.02"  # a request that waited longer than this bucket for a Piper worker was ordered by the fair queue


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric `name` in Prometheus text format, with their labels."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels_text, _, value = line[len(name) + 1:].rpartition("} ")
        labels = dict(part.split("=", 1) for part in labels_text.split('",') if "=" in part)
        out.append(({k: v.strip('"') for k, v in labels.items()}, float(value)))
    return out


async def _engine_waits(client: Any, metrics_url: str) -> dict[str, tuple[float, float]]:
    """Per weight class: Piper requests that took a worker, and those that waited longer than WAITED_S."""
    text = (await client.get(metrics_url)).text
    out: dict[str, tuple[float, float]] = {}
    for labels, value in _samples(text, "tts_engine_queue_wait_seconds_bucket"):
        if labels.get("model") != "piper":
            continue
        total, waited = out.get(labels["weight"], (0.0, 0.0))
        if labels["le"] == "+Inf":
            total = value
        elif labels["le"] == WAITED_S:
            waited = -value  # the ones within the bucket; turned into the ones past it below
        out[labels["weight"]] = (total, waited)
    return {w: (total, total + within) for w, (total, within) in out.items()}


async def _decisions(client: Any, base: str, ids: dict[str, str]) -> dict[tuple[str, str], float]:
    """The gateway's admission decisions on Piper by (tenant name, outcome)."""
    text = (await client.get(f"{base}/metrics")).text
    names = {ids[t]: t for t in TENANTS}
    return {(names[labels["tenant"]], labels["outcome"]): value
            for labels, value in _samples(text, "tts_tenant_admission_decisions_total")
            if labels.get("engine") == "piper" and labels.get("tenant") in names}


def _running_mean(outcomes: list[Outcome], seconds: float) -> float:
    """Requests of these outcomes running (answered 200, stream not ended) on average over [0, seconds]."""
    busy = sum(max(0.0, min(o.at + o.total_s, seconds) - (o.at + o.answered_s)) for o in outcomes if o.status == 200)
    return busy / seconds


def _gaps(outcomes: list[Outcome]) -> list[float]:
    """Per client: from a served stream's end to the client's next request being answered."""
    by_client: dict[int, list[Outcome]] = {}
    for o in outcomes:
        by_client.setdefault(o.client, []).append(o)
    gaps = []
    for mine in by_client.values():
        mine.sort(key=lambda o: o.at)
        gaps += [b.at + b.answered_s - (a.at + a.total_s) for a, b in zip(mine, mine[1:], strict=False)
                 if a.status == 200]
    return gaps


def _ms(values: list[float], q: float) -> float | None:
    p = percentile(values, q)
    return None if p is None else round(p * 1000, 1)


async def weights_scenario(client: Any, stack: Any, keys: dict[str, str], ids: dict[str, str], texts: Texts,
                           clients: int, seconds: float) -> dict[str, Any]:
    waits_before = await _engine_waits(client, stack.metrics_url)
    decided_before = await _decisions(client, stack.base, ids)
    weighted = Scenario()
    until = time.monotonic() + seconds
    await asyncio.gather(*(_retrying_client(client, stack.base, keys[t], t, texts, weighted, until, who=i)
                           for t in TENANTS for i in range(clients // 2)))
    waits_after = await _engine_waits(client, stack.metrics_url)
    decided_after = await _decisions(client, stack.base, ids)
    audio = {t: sum(o.audio_s for o in _served(weighted, t, seconds)) for t in TENANTS}
    p, s = audio["P"], audio["S"]
    per_tenant: dict[str, Any] = {}
    for t, weight in TENANTS.items():
        mine = [o for o in weighted.outcomes if o.tenant == t]
        refused = [o for o in mine if o.status == 503]
        label = f"{weight:g}"
        total, waited = (a - b for a, b in zip(waits_after.get(label, (0.0, 0.0)), waits_before.get(label, (0.0, 0.0)),
                                                strict=True))
        per_tenant[t] = {
            "weight": weight, "served": len([o for o in mine if o.status == 200]), "refused": len(refused),
            "clients_admitted": len({o.client for o in mine if o.status == 200}),
            "running_mean": round(_running_mean(mine, seconds), 2),
            "gap_p50_ms": _ms(_gaps(mine), 50), "gap_p90_ms": _ms(_gaps(mine), 90),
            "retry_after_mean_s": round(statistics.mean(o.retry_after for o in refused), 1) if refused else None,
            "gateway_admitted": decided_after.get((t, "admitted"), 0) - decided_before.get((t, "admitted"), 0),
            "gateway_refused": decided_after.get((t, "shed"), 0) - decided_before.get((t, "shed"), 0),
            "engine_requests": total, "engine_waited": waited,
        }
    ratio = p / s if s else None
    return {"weight3_audio_s": round(p, 1), "weight1_audio_s": round(s, 1),
            "ratio": None if ratio is None else round(ratio, 2),
            "weight3_refused": per_tenant["P"]["refused"], "weight1_refused": per_tenant["S"]["refused"],
            "tenants": per_tenant}


def weights_rows(w: dict[str, Any]) -> list[list[Any]]:
    rows = [["weights 3:1: served audio-s (weight 3 / weight 1), ratio",
             f"{w['weight3_audio_s']} / {w['weight1_audio_s']}, {w['ratio']}"],
            ["weights 3:1: refusals (weight 3 / weight 1)", f"{w['weight3_refused']} / {w['weight1_refused']}"]]
    t = w.get("tenants")
    if not t:  # recorded before the scenario was instrumented
        return rows
    both = (t["P"], t["S"])

    def pair(key: str) -> str:
        return " / ".join(str(x[key]) for x in both)

    rows += [
        ["weights 3:1 (weight 3 / weight 1): requests running in the gateway on average", pair("running_mean")],
        ["weights 3:1: clients ever admitted (of each tenant's)", pair("clients_admitted")],
        ["weights 3:1: a client's stream end to its next request answered, p50 / p90 (ms)",
         " / ".join(f"{x['gap_p50_ms']}, {x['gap_p90_ms']}" for x in both)],
        ["weights 3:1: Retry-After told, mean (s)", pair("retry_after_mean_s")],
        ["weights 3:1: the gateway's decisions, admitted / refused",
         " / ".join(f"{x['gateway_admitted']:g}, {x['gateway_refused']:g}" for x in both)],
        [f"weights 3:1: Piper requests, those that waited > {float(WAITED_S) * 1000:g} ms for a worker",
         " / ".join(f"{x['engine_requests']:g}, {x['engine_waited']:g}" for x in both)],
    ]
    return rows
