"""`python -m bench.normalisation`: time to first audio with text normalisation on vs off.

Triton (piper) and the control plane run as real processes (bench.stack); each round streams the
same call-centre text twice through `POST /v1/synthesize/stream` (pcm), once with `normalize: "on"`
and once with `"off"`, in alternating order, with a fresh `seed` so neither is a cache hit. Also
times the normaliser alone (per sentence of the test table, and a 5,000-character document).
Recorded in bench/results/normalisation-piper-cpu/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.results import machine_info, md_table, write_results

TEXT = ("Your order #A-10293 ships on Jan 5th and the total is $1,234.56. "
        "Please call 1-800-555-0199 or email support@example.com with any questions.")
SPOKEN = ("Your order number A, one zero two nine three ships on January fifth and the total is one thousand two "
          "hundred thirty-four dollars and fifty-six cents. Please call one, eight zero zero, five five five, zero one "
          "nine nine or email support at example dot com with any questions.")
OUT = Path(__file__).resolve().parent / "results" / "normalisation-piper-cpu"


def _normaliser_cost() -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "control_plane"))
    from test_normalize import ENGLISH, OTHER  # the table of call-centre strings

    from control_plane.services.normalize import normalize
    from control_plane.services.planning import plan_text

    cases = [("en", w) for w, _ in ENGLISH] + [(lang, w) for lang, w, _ in OTHER]
    for lang, w in cases:  # compile and warm the caches once, as a running server has
        normalize(w, lang)
    start = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for lang, w in cases:
            normalize(w, lang)
    per_sentence_us = (time.perf_counter() - start) / (rounds * len(cases)) * 1e6
    doc = " ".join(w for _, w in cases if _ == "en")
    doc = (doc * (5000 // len(doc) + 1))[:4990]
    start = time.perf_counter()
    for _ in range(5):
        plan_text(doc, language="en")
    plan_on_ms = (time.perf_counter() - start) / 5 * 1000
    start = time.perf_counter()
    for _ in range(5):
        plan_text(doc, language="en", normalize_mode="off")
    plan_off_ms = (time.perf_counter() - start) / 5 * 1000
    return {"per_sentence_us": round(per_sentence_us, 1), "plan_5000_chars_on_ms": round(plan_on_ms, 2),
            "plan_5000_chars_off_ms": round(plan_off_ms, 2), "sentences": len(cases)}


def _first_audio(client: Any, base: str, key: str, mode: str, seed: int) -> float:
    # "prenormalised": the spoken form sent with normalisation off, so the engine reads exactly what it
    # reads with "on": the difference between the two is what normalising costs, nothing else.
    text = SPOKEN if mode == "prenormalised" else TEXT
    body = {"text": text, "format": "pcm", "normalize": "off" if mode == "prenormalised" else mode, "seed": seed}
    start = time.perf_counter()
    with client.stream("POST", f"{base}/v1/synthesize/stream", json=body,
                       headers={"Authorization": f"Bearer {key}"}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"gateway answered {response.status_code}: {response.read()[:300]!r}")
        if response.headers.get("x-cache") != "MISS":
            raise RuntimeError("a cache hit: the measurement needs fresh syntheses")
        first = None
        for piece in response.iter_raw():
            if piece and first is None:
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("no audio")
    return first


def run(rounds: int) -> dict[str, Any]:
    import os

    import httpx

    from bench.stack import running_stack

    load_before = os.getloadavg()[0]
    cost = _normaliser_cost()
    times: dict[str, list[float]] = {"on": [], "off": [], "prenormalised": []}
    with running_stack("normalisation", ["piper"], "1") as stack, httpx.Client(timeout=120) as client:
        r = client.post(f"{stack.base}/admin/v1/tenants", headers={"Authorization": f"Bearer {stack.admin}"},
                        json={"name": "bench-normalisation"})
        r.raise_for_status()
        key = r.json()["api_key"]
        modes = list(times)
        # A seed of its own per request: "on" and "prenormalised" plan the same text, so they would share
        # a cache key.
        seeds = iter(range(1, 1_000_000))
        for _ in range(2):
            for mode in modes:
                _first_audio(client, stack.base, key, mode, next(seeds))
        for i in range(rounds):
            for mode in modes[i % 3:] + modes[: i % 3]:  # rotate the order: no mode always goes first
                times[mode].append(_first_audio(client, stack.base, key, mode, next(seeds)))
    med = {m: statistics.median(v) for m, v in times.items()}
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores"
    return {"rounds": rounds, "load_average": load, "text": TEXT, "spoken": SPOKEN,
            **{f"ttfa_{m}_median_ms": round(v * 1000, 1) for m, v in med.items()},
            "ratio_on_over_prenormalised": round(med["on"] / med["prenormalised"], 3),
            "ratio_on_over_off": round(med["on"] / med["off"], 3),
            **{f"ttfa_{m}_ms": [round(t * 1000, 1) for t in v] for m, v in times.items()}, "normaliser": cost}


def markdown(result: dict[str, Any]) -> str:
    n = result["normaliser"]
    rows = [["normalize: on (written text)", result["ttfa_on_median_ms"]],
            ["normalize: off, the spoken form given", result["ttfa_prenormalised_median_ms"]],
            ["normalize: off (written text, read by the engine's own rules)", result["ttfa_off_median_ms"]]]
    return "\n".join([
        "## Text normalisation: time to first audio (piper, CPU)", "",
        f"{result['rounds']} rounds, alternating order, streamed pcm, no cache hits. Text: \"{result['text']}\"", "",
        md_table(["mode", "median first audio (ms)"], rows), "",
        f"On / off with the same engine input: **{result['ratio_on_over_prenormalised']:.3f}** (target: within "
        f"1.10). On / off with the written text: {result['ratio_on_over_off']:.3f} (the engine then reads a "
        "different first sentence: Piper returns audio a sentence at a time).", "",
        f"Load average during the run: {result.get('load_average', 'not recorded')} (the absolute times scale with "
        "it; the ratios are the result).", "",
        f"The normaliser alone: {n['per_sentence_us']} µs per sentence over the {n['sentences']} table strings; "
        f"planning a 5,000-character document {n['plan_5000_chars_on_ms']} ms with normalisation, "
        f"{n['plan_5000_chars_off_ms']} ms without.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.normalisation", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = run(args.rounds)
    info = machine_info("cpu")
    info["command"] = "python -m bench.normalisation " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results(args.out, "normalisation", {"machine": info, **result}, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
