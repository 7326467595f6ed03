"""`bench ttfa`'s summary: medians per path, the gateway's stages, Triton's view, ratios, and the markdown."""

from __future__ import annotations

import math
from typing import Any

from bench.metrics import percentile
from bench.results import md_table
from bench.ttfa_paths import STATS_PARTS

# The gateway's marks (control_plane/stage_timing.py), as the table names them.
STAGE_NAMES = {
    "middleware": "request reaches the app (client send → middleware)",
    "authed": "auth + rate limits done",
    "handler": "body parsed, handler entered",
    "voice": "voice resolved, lexicons read",
    "planned": "plan done (sentence split, normalisation)",
    "languages": "languages checked, text in engine form",
    "prepared": "model versions known, cache key: prepare done",
    "render": "charged, cache missed, slot held: rendering starts",
    "engine_sent": "engine gRPC call started",
    "engine_first": "first Triton response received",
    "first_pcm": "first audio resampled",
    "first_encoded": "first bytes encoded",
    "first_written": "first bytes handed to the transport",
    "client_first": "first byte at the client",
}
TARGET = 1.15


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    p = percentile(clean, 50)
    return None if p is None else round(p, 2)


def _ms(values: list[float]) -> list[float]:
    return [v * 1000 for v in values]


def _stage_table(gateway: list[dict[str, Any]], lines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per gateway request: each mark in ms since the client sent it, and the step from the mark before."""
    at: dict[str, list[float]] = {name: [] for name in STAGE_NAMES}
    step: dict[str, list[float]] = {name: [] for name in STAGE_NAMES}
    missing = 0
    for row in gateway:
        line = lines.get(row["request_id"])
        if line is None:
            missing += 1
            continue
        offset = (line["origin_monotonic"] - row["sent_monotonic"]) * 1000
        marks = {"middleware": 0.0, **line["stages_ms"]}
        cumulative = {name: offset + value for name, value in marks.items()}
        cumulative["client_first"] = row["first_s"] * 1000
        previous = 0.0
        for name in STAGE_NAMES:
            if name in cumulative:
                at[name].append(cumulative[name])
                step[name].append(cumulative[name] - previous)
                previous = cumulative[name]
    return {"at_ms": {k: _median(v) for k, v in at.items() if v},
            "step_ms": {k: _median(v) for k, v in step.items() if v}, "missing_lines": missing}


def summarise(raw: dict[str, list[Any]], lines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    engine = _median(_ms(raw["engine"]))
    direct = _median(_ms([r["first_s"] for r in raw["direct"]]))
    gateway = _median(_ms([r["first_s"] for r in raw["gateway"]]))

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    triton = {}
    for path in ("direct", "gateway"):
        rows = raw[path]
        triton[path] = {"in_model_first_ms": _median([r["in_model_first_ms"] for r in rows]),
                        **{f"{part}_ms": _median([r["triton_stats_ms"][part] for r in rows]) for part in STATS_PARTS}}
    return {
        "engine_first_ms": engine, "direct_first_ms": direct, "gateway_first_ms": gateway,
        "gateway_over_engine": ratio(gateway, engine), "direct_over_engine": ratio(direct, engine),
        "gateway_over_direct": ratio(gateway, direct), "target": TARGET,
        "target_met": bool(gateway and engine and gateway / engine <= TARGET),
        "stages": _stage_table(raw["gateway"], lines), "triton": triton,
        "raw": {"engine_first_s": raw["engine"], "direct": raw["direct"], "gateway": raw["gateway"]},
        "problems": [],
    }


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def ttfa_markdown(result: dict[str, Any]) -> str:
    parts = [f"## Time to first audio, where it goes ({result['rounds']} rounds per engine, paths alternating)\n\n"
             "Shared 2-core machine (other work running): compare within one run only. Medians; ratios divide the "
             "medians of this run. Engine = in process, same voice/artifact, one torch thread as Triton's."]
    if result.get("api_env") or result.get("triton_env"):
        parts.append(f"Gateway env {result.get('api_env') or {}}, Triton env {result.get('triton_env') or {}}.")
    for model, r in result["engines"].items():
        rows = [["engine in process, first chunk", _fmt(r["engine_first_ms"]), "1.00"],
                ["Triton gRPC direct, first response", _fmt(r["direct_first_ms"]), f"{r['direct_over_engine']}"],
                ["gateway `/v1/synthesize/stream`, first byte", _fmt(r["gateway_first_ms"]),
                 f"{r['gateway_over_engine']}"]]
        parts.append(f"### {model}\n\n" + md_table(["path", "first audio p50 (ms)", "÷ engine"], rows)
                     + f"\n\nGateway ÷ engine {r['gateway_over_engine']} (target ≤ {r['target']}: "
                     f"{'met' if r['target_met'] else 'not met'}); gateway ÷ direct {r['gateway_over_direct']}.")
        st = r["stages"]
        stage_rows = [[label, _fmt(st["at_ms"].get(name)), _fmt(st["step_ms"].get(name))]
                      for name, label in _stage_names().items() if name in st["at_ms"]]
        parts.append(md_table(["gateway stage", "at (ms since client send, p50)", "step (ms, p50)"], stage_rows))
        t = r["triton"]
        triton_rows = [[label, _fmt(t["direct"][key]), _fmt(t["gateway"][key])] for key, label in (
            ("in_model_first_ms", "model: arrival → first chunk sent"), ("queue_ms", "Triton queue"),
            ("compute_input_ms", "compute input"), ("compute_infer_ms", "compute infer (execute hand-off)"),
            ("compute_output_ms", "compute output"))]
        parts.append(md_table(["inside Triton (ms, p50)", "direct requests", "gateway requests"], triton_rows))
    return "\n\n".join(parts) + "\n"


def _stage_names() -> dict[str, str]:
    return STAGE_NAMES
