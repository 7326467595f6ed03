"""`bench first-segment`: time to first audio with the first sentence cut short, against the whole sentence.

A real Triton (the bundled Piper voice) and two `tts-gateway serve` processes sharing it, one with
FIRST_SEGMENT_SPLIT=true and one with false. Each 12-word first sentence goes through
`POST /v1/synthesize/stream` (raw PCM) to both, one request at a time, the order alternating from
pass to pass so machine noise hits both alike; every request has its own seed, so none is a cache
hit. Piper returns a sentence's audio in one piece, so the uncut gateway's first audio is the time
the whole sentence takes to synthesise (through the same path); the target is a cut first audio at
most half of it. The engine's own times in process (the whole sentence, and the first part alone)
are measured in the same passes for reference.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from bench.results import md_table
from bench.stack import another_api, running_stack

# Twelve words each: two cut at a clause, two at a phrase boundary, one at a plain word boundary, one
# whose first clause is short. Written for this benchmark.
SENTENCES = [
    "Thanks for calling the support line, how can I help you today?",
    "Good morning and welcome, your call is important to us this afternoon.",
    "We have received your payment, and your order will ship on Monday.",
    "Please remember to bring your passport and a printed copy of it.",
    "I can help you with your order if you give the number.",
    "Your parcel left the depot today and should arrive by tomorrow noon.",
]
BENCH_LIMITS = {"requests_per_minute": 1_000_000, "requests_per_hour": 10_000_000, "requests_per_day": 100_000_000,
                "monthly_characters": 10**11}


def _stream(client, base: str, key: str, text: str, seed: int) -> tuple[float, float]:
    """(first audio byte s, last byte s) of one streamed synthesis."""
    started = time.perf_counter()
    first = None
    with client.stream("POST", f"{base}/v1/synthesize/stream", headers={"Authorization": f"Bearer {key}"},
                       json={"text": text, "format": "pcm", "seed": seed}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"gateway answered {response.status_code}: {response.read()[:300]!r}")
        for piece in response.iter_raw():
            if piece and first is None:
                first = time.perf_counter() - started
        if response.headers.get("x-cache", "").upper().startswith("HIT"):
            raise RuntimeError("a cache hit: the comparison needs fresh renders")
    assert first is not None, "no audio"
    return first, time.perf_counter() - started


def _tenant(client, base: str, admin: str) -> str:
    made = client.post(f"{base}/admin/v1/tenants", json={"name": "bench-first-segment", **BENCH_LIMITS},
                       headers={"Authorization": f"Bearer {admin}"})
    made.raise_for_status()
    return made.json()["api_key"]


def _first_parts() -> dict[str, str]:
    from control_plane.services.planning import plan_text

    return {s: plan_text(s, language="en", shorten_first_segment=True).segments[0].text for s in SENTENCES}


def run_first_segment_stage(rounds: int, log=print) -> dict[str, Any]:
    import httpx

    from tts_engine.piper import PiperEngine

    parts = _first_parts()
    engine = PiperEngine.bundled()
    load_before = os.getloadavg()
    samples: dict[str, list[dict[str, float]]] = {s: [] for s in SENTENCES}
    with running_stack("first-segment", ["piper"], "1", api_env={"FIRST_SEGMENT_SPLIT": "true"}) as cut, \
            another_api(cut, "first-segment-whole", {"FIRST_SEGMENT_SPLIT": "false"}) as whole, \
            httpx.Client(timeout=120) as client:
        keys = {"cut": _tenant(client, cut.base, cut.admin), "whole": _tenant(client, whole.base, whole.admin)}
        bases = {"cut": cut.base, "whole": whole.base}
        for side in ("cut", "whole"):  # warm both paths (first connection, model threads)
            _stream(client, bases[side], keys[side], "Warming up the path.", seed=10**6)
        engine.synthesize("Warming up the engine.")
        seed = 0
        for r in range(rounds):
            for i, text in enumerate(SENTENCES):
                order = ("cut", "whole") if (r + i) % 2 == 0 else ("whole", "cut")
                row: dict[str, float] = {}
                for side in order:
                    seed += 1
                    row[f"{side}_first_s"], row[f"{side}_total_s"] = _stream(client, bases[side], keys[side], text,
                                                                              seed)
                t = time.perf_counter()
                engine.synthesize(text)
                row["engine_whole_s"] = time.perf_counter() - t
                t = time.perf_counter()
                engine.synthesize(parts[text])
                row["engine_first_part_s"] = time.perf_counter() - t
                samples[text].append(row)
            log(f"  pass {r + 1}/{rounds}: cut {_ms(_all(samples, 'cut_first_s'))} ms, whole "
                f"{_ms(_all(samples, 'whole_first_s'))} ms (medians so far)")
    return _summarise(samples, parts, rounds, load_before, os.getloadavg())


def _all(samples: dict[str, list[dict[str, float]]], key: str) -> list[float]:
    return [row[key] for rows in samples.values() for row in rows]


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def _summarise(samples, parts, rounds, load_before, load_after) -> dict[str, Any]:
    per_sentence = []
    for text, rows in samples.items():
        cut, whole = [r["cut_first_s"] for r in rows], [r["whole_first_s"] for r in rows]
        per_sentence.append({
            "sentence": text, "words": len(text.split()), "first_segment": parts[text],
            "first_segment_words": len(parts[text].split()),
            "cut_ttfa_p50_ms": _ms(cut), "whole_ttfa_p50_ms": _ms(whole),
            "ratio_p50": round(statistics.median(a / b for a, b in zip(cut, whole, strict=True)), 3),
            "cut_total_p50_ms": _ms([r["cut_total_s"] for r in rows]),
            "whole_total_p50_ms": _ms([r["whole_total_s"] for r in rows]),
            "engine_whole_p50_ms": _ms([r["engine_whole_s"] for r in rows]),
            "engine_first_part_p50_ms": _ms([r["engine_first_part_s"] for r in rows]),
        })
    cut, whole = _all(samples, "cut_first_s"), _all(samples, "whole_first_s")
    ratio = round(statistics.median(cut) / statistics.median(whole), 3)
    paired = round(statistics.median(a / b for a, b in zip(cut, whole, strict=True)), 3)
    return {
        "rounds": rounds, "requests_per_side": len(cut), "engine": "piper",
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "cut_ttfa_p50_ms": _ms(cut), "whole_ttfa_p50_ms": _ms(whole),
        "ratio_of_medians": ratio, "paired_ratio_p50": paired,
        "cut_total_p50_ms": _ms(_all(samples, "cut_total_s")),
        "whole_total_p50_ms": _ms(_all(samples, "whole_total_s")),
        "engine_whole_p50_ms": _ms(_all(samples, "engine_whole_s")),
        "engine_first_part_p50_ms": _ms(_all(samples, "engine_first_part_s")),
        "target_ratio": 0.5, "target_met": ratio <= 0.5,
        "sentences": per_sentence, "problems": [],
    }


def first_segment_markdown(result: dict[str, Any]) -> str:
    rows = [[s["sentence"], s["first_segment"], s["cut_ttfa_p50_ms"], s["whole_ttfa_p50_ms"], s["ratio_p50"],
             s["engine_first_part_p50_ms"], s["engine_whole_p50_ms"]] for s in result["sentences"]]
    rows.append(["**all**", "", result["cut_ttfa_p50_ms"], result["whole_ttfa_p50_ms"], result["paired_ratio_p50"],
                 result["engine_first_part_p50_ms"], result["engine_whole_p50_ms"]])
    table = md_table(["first sentence (12 words)", "first segment", "cut: first audio p50 (ms)",
                      "whole: first audio p50 (ms)", "paired ratio p50", "engine: first part (ms)",
                      "engine: whole sentence (ms)"], rows)
    verdict = "met" if result["target_met"] else "not met"
    return (
        f"## First segment cut short\n\n{result['requests_per_side']} requests per side ({result['rounds']} passes "
        f"over {len(result['sentences'])} sentences), alternating between a gateway with FIRST_SEGMENT_SPLIT=true "
        f"and one with false on the same Triton; bundled Piper voice, raw PCM over `/v1/synthesize/stream`, "
        f"no cache hits. The machine was shared with other work (load average {result['load_average_before']} "
        f"before, {result['load_average_after']} after): absolute times are noisy, the paired ratios less so.\n\n"
        f"{table}\n\n"
        f"Time to first audio, cut / whole: **{result['ratio_of_medians']}** (ratio of medians; paired median "
        f"{result['paired_ratio_p50']}); target ≤ {result['target_ratio']}: {verdict}. Whole response p50: "
        f"cut {result['cut_total_p50_ms']} ms, whole {result['whole_total_p50_ms']} ms."
    )
