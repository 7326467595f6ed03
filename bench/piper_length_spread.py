"""How much the length of a Piper render varies, in process: `python -m bench.piper_length_spread [--renders N]`.

Piper draws every phoneme's duration at random, so two renders of one text differ in length. The compatibility
tests hold the length of the audio a client library hands back against the mean of a few fresh renders of the
same text (tests/compat/compat_helpers.py), to catch a stream whose sample rate is mislabelled (22.05 kHz audio
labelled 24 kHz is 8.1 % short, the reverse 8.8 % long). This renders each text those checks speak N times with
the bundled voice (`PiperEngine.bundled().synthesize`) and reports the relative standard deviation of the length,
and for the length checks what it implies: the standard deviation of one render against the mean of
REFERENCE_RENDERS others, s * sqrt(1 + 1/k), the tolerance in those units, the chance that a correct stream
fails (two-sided normal tail) and the chance that a mislabelled one passes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.results import machine_info, md_table, write_results

COMPAT = Path(__file__).resolve().parents[1] / "tests" / "compat"
# Texts of the checks that compare two renders without the reference, and one sentence of the texts the
# length checks spoke before (the one whose render failed a run), for comparison.
OTHER_TEXTS = {
    "G.711 at 16 kHz against 8 kHz (test_deepgram_http)": "Telephony at sixteen kilohertz.",
    "earlier: one Pipecat sentence": "Pipecat sends whole sentences to the gateway.",
}
MISLABELLED = {"22.05 kHz labelled 24 kHz": 22050 / 24000 - 1, "24 kHz labelled 22.05 kHz": 24000 / 22050 - 1}


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _spread(engine: Any, text: str, renders: int) -> dict[str, Any]:
    cpu0 = time.process_time()
    lengths = np.array([engine.synthesize(text).size for _ in range(renders)], dtype=float) / engine.sample_rate
    cpu = (time.process_time() - cpu0) / renders
    rel = lengths / lengths.mean()
    return {"text": text, "renders": renders, "mean_s": float(lengths.mean()), "rel_std": float(rel.std(ddof=1)),
            "rel_min": float(rel.min()), "rel_max": float(rel.max()), "cpu_s_per_render": cpu}


def run(renders: int) -> dict[str, Any]:
    sys.path.insert(0, str(COMPAT))
    import compat_helpers as checks  # type: ignore[import-not-found]

    from tts_engine.piper.engine import PiperEngine

    engine = PiperEngine.bundled()
    texts = {"length checks (compat_helpers.SPOKEN_TEXT)": checks.SPOKEN_TEXT, **OTHER_TEXTS}
    rows = {label: _spread(engine, text, renders) for label, text in texts.items()}
    s = rows["length checks (compat_helpers.SPOKEN_TEXT)"]["rel_std"]
    k, tolerance = checks.REFERENCE_RENDERS, checks.RENDER_TOLERANCE
    sd = s * math.sqrt(1 + 1 / k)
    passes = {name: _normal_cdf((tolerance - abs(off)) / sd) for name, off in MISLABELLED.items()}
    check = {"reference_renders": k, "tolerance": tolerance, "difference_rel_std": sd,
             "tolerance_in_sd": tolerance / sd, "false_failure": math.erfc(tolerance / sd / math.sqrt(2)),
             "mislabelled_passes": passes}
    return {"texts": rows, "length_check": check}


def markdown(result: dict[str, Any], command: str, info: dict[str, Any]) -> str:
    rows = [[label, f"{r['mean_s']:.2f}", r["renders"], f"{100 * r['rel_std']:.2f} %", f"{r['rel_min']:.3f}",
             f"{r['rel_max']:.3f}", f"{r['cpu_s_per_render']:.2f}"] for label, r in result["texts"].items()]
    c = result["length_check"]
    passes = "; ".join(f"{name}: {p:.2g}" for name, p in c["mislabelled_passes"].items())
    return (f"`{command}` at commit {info.get('git_commit')}, {info.get('date')}, load average before: "
            f"{info.get('load_before')}\n\n"
            "Length of Piper renders of one text, in process (relative to the mean):\n\n"
            + md_table(["text", "mean s", "renders", "std", "min", "max", "CPU s/render"], rows)
            + f"\n\nOne render against the mean of {c['reference_renders']}: "
            f"std {100 * c['difference_rel_std']:.2f} %; "
            f"tolerance {100 * c['tolerance']:.1f} % = {c['tolerance_in_sd']:.1f} std; a correct stream fails with "
            f"probability {c['false_failure']:.1g}; a mislabelled one passes with probability {passes}.\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.piper_length_spread")
    parser.add_argument("--renders", type=int, default=150, help="renders of each text")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "piper-length-spread-cpu")
    args = parser.parse_args(argv)
    info = machine_info()
    command = "python -m bench.piper_length_spread " + " ".join(argv)
    info["command"] = command.strip()
    info["load_before"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    result = run(args.renders)
    text = markdown(result, info["command"], info)
    write_results(args.out, "piper-length-spread", {"machine": info, **result}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
