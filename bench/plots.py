"""PNG plots of a results folder: throughput and TTFA against concurrency, cost against length."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _series(levels: list[dict[str, Any]], side: str, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for level in levels:
        entry = level.get(side)
        if entry and entry.get(key) is not None:
            xs.append(level["concurrency"])
            ys.append(entry[key])
    return xs, ys


def plot_concurrency(result: dict[str, Any], out: Path, stem: str) -> list[Path]:
    plt = _pyplot()
    levels = result["levels"]
    model = result["model"]["name"]
    written = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for side, label in (("engine", "ours (continuous batching)"), ("reference", "reference (inference_stream + lock)")):
        xs, ys = _series(levels, side, "audio_s_per_wall_s")
        if xs:
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("audio seconds per wall second")
    ax.set_title(f"Aggregate throughput ({model}, {result['model']['device']})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    path = out / f"{stem}-throughput.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for side, label in (("engine", "ours"), ("reference", "reference")):
        for key, style in (("ttfa_p50_ms", "-"), ("ttfa_p95_ms", "--")):
            xs, ys = _series(levels, side, key)
            if xs:
                ax.plot(xs, ys, style, marker="o", label=f"{label} {key[5:8]}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("time to first audio (ms)")
    ax.set_title(f"Time to first audio ({model}, {result['model']['device']})")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend()
    path = out / f"{stem}-ttfa.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def plot_length(result: dict[str, Any], out: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, label in (
        ("ours_streaming", "ours, streaming"),
        ("ours_non_streaming", "ours, not streaming"),
        ("reference_streaming", "reference, streaming"),
        ("reference_non_streaming", "reference, not streaming"),
    ):
        xs = [r["seconds"] for r in result["rows"] if r.get(key)]
        ys = [r[key]["wall_s"] for r in result["rows"] if r.get(key)]
        if xs:
            ax.plot(xs, ys, marker="o", label=label, linestyle="-" if "non" not in key else "--")
    ax.set_xlabel("utterance length (s of audio)")
    ax.set_ylabel("wall seconds to produce it")
    ax.set_title(f"Cost against length ({result['model']['name']}, one request)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    path = out / "length-cost.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_folder(folder: str | Path) -> list[Path]:
    """Every plot the folder's results.json has data for."""
    out = Path(folder)
    data = json.loads((out / "results.json").read_text())
    stages = data.get("stages", {})
    written: list[Path] = []
    if "engine" in stages:
        written += plot_concurrency(stages["engine"], out, "engine")
    if "triton" in stages and stages["triton"].get("levels"):
        written += plot_concurrency(stages["triton"], out, "triton")
    if "length" in stages:
        written.append(plot_length(stages["length"], out))
    return written
