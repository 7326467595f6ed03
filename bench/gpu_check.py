"""`python -m bench gpu` (what `bench/gpu_check.sh` runs): the GPU check's setup, phases, figures and report.

Writes `<out>/results.json` (under `stages.gpu`) and `<out>/summary.md` after setup and after every
phase, so a run stopped anywhere leaves what it measured. Weights are random and seeded (the
released XTTS-v2 weights are not used): timings do not depend on weight values.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.results import machine_info, md_table, write_results
from bench.workload import make_requests

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_PACKAGES = ("numpy", "transformers", "coqui-tts", "tokenizers", "torchaudio")


def add_gpu_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="seconds from start to the last phase's deadline (the wrapper passes what its budget leaves)")
    p.add_argument("--ttfa-requests", type=int, default=5, help="sequential requests per side for time to first audio")
    p.add_argument("--ttfa-tokens", type=int, default=64, help="audio tokens per time-to-first-audio request")
    p.add_argument("--levels", type=lambda t: [int(x) for x in t.split(",") if x],
                   default=[1, 2, 4, 8, 16, 32, 64, 128], help="real-time search levels, ascending")
    p.add_argument("--tokens", type=int, default=128, help="audio tokens per request in the search and throughput")
    p.add_argument("--throughput-concurrency", type=int, default=32)
    p.add_argument("--ttfa-timeout", type=float, default=50.0)
    p.add_argument("--realtime-timeout", type=float, default=140.0)
    p.add_argument("--throughput-timeout", type=float, default=140.0)
    p.add_argument("--vocoder-threads", type=int, default=1)


def _device_slug(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0).lower().replace("nvidia", "")
        return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "cuda"
    return re.sub(r"[^a-z0-9]+", "-", device.lower())


def environment(device: str) -> dict[str, Any]:
    """The machine plus the GPU, driver, CUDA/cuDNN and the versions of the packages the engine runs on."""
    import torch

    info = machine_info(device)
    for name in _PACKAGES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    info["cuda_available"] = torch.cuda.is_available()
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=True)
            info["driver"] = smi.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            info["driver"] = None
    return info


def figures(phases: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers, None where a phase did not produce them."""
    ttfa, rt, tp = phases.get("ttfa", {}), phases.get("realtime", {}), phases.get("throughput", {})
    return {
        "ttfa_median_ms_engine": (ttfa.get("engine") or {}).get("ttfa_median_ms"),
        "ttfa_median_ms_reference": (ttfa.get("reference") or {}).get("ttfa_median_ms"),
        "max_realtime_concurrency": rt.get("max_realtime_concurrency"),
        "realtime_outcome": rt.get("outcome"),
        "throughput_concurrency": tp.get("concurrency"),
        "throughput_engine_audio_s_per_s": tp.get("engine_audio_s_per_wall_s"),
        "throughput_reference_audio_s_per_s": tp.get("reference_audio_s_per_wall_s"),
        "throughput_ratio": tp.get("throughput_ratio"),
    }


def gpu_markdown(result: dict[str, Any]) -> str:
    m, f, ph = result["machine"], result["figures"], result["phases"]
    where = (f"{m.get('gpu')} (driver {m.get('driver')}, CUDA {m.get('cuda')}, {m.get('gpu_memory_gib')} GiB)"
             if m.get("gpu") else f"{m['cpu']} ({m['cores']} cores, no GPU)")
    model = result.get("model") or {}
    lines = [
        "## GPU check", "",
        f"_{m['date']} · {where} · torch {m['torch']} · transformers {m.get('transformers')} · "
        f"coqui-tts {m.get('coqui-tts')} · numpy {m.get('numpy')} · commit {m['git_commit']}_", "",
        f"Model `{model.get('name')}` ({(model.get('params') or 0) / 1e6:.1f} M params, "
        f"{model.get('dtype')}, {model.get('weights')}); {result['elapsed_s']} s in all.", "",
        md_table(["figure", "engine", "reference", "ratio"], [
            ["time to first audio, concurrency 1, median ms", f["ttfa_median_ms_engine"],
             f["ttfa_median_ms_reference"], None],
            ["most concurrent streams all faster than real time", f["max_realtime_concurrency"], None, None],
            [f"audio s per s at concurrency {f['throughput_concurrency']}", f["throughput_engine_audio_s_per_s"],
             f["throughput_reference_audio_s_per_s"], f["throughput_ratio"]],
        ]), "",
        "Phases: " + ", ".join(f"{k} {v.get('status')} ({v.get('seconds', '–')} s)" for k, v in ph.items()) + ".",
    ]
    rt = ph.get("realtime", {})
    if rt.get("levels"):
        lines += ["", f"Real-time search ({rt['tokens_per_request']} tokens per stream): {rt['outcome']}.", "",
                  md_table(["streams", "RTF max", "RTF p95", "TTFA p50 ms", "TTFA p95 ms", "audio s/s", "rows/step",
                            "all < 1"],
                           [[r["concurrency"], r["rtf_max"], r["rtf_p95"], r["ttfa_p50_ms"], r["ttfa_p95_ms"],
                             r["audio_s_per_wall_s"], r["avg_batch"], r["realtime"]] for r in rt["levels"]])]
    tp = ph.get("throughput", {})
    if tp.get("passes"):
        lines += ["", f"Throughput passes ({tp['tokens_per_request']} tokens per request):", "",
                  md_table(["side", "completed", "cut", "wall s", "audio s", "audio s/s", "TTFA p95 ms"],
                           [[p["side"], p["completed"], p["cut"], p["wall_s"], p["audio_s"], p["audio_s_per_wall_s"],
                             p["ttfa_p95_ms"]] for p in tp["passes"]])]
    problems = [f"{k}: {v['error']}" for k, v in ph.items() if v.get("error")] + result["problems"][:10]
    if problems:
        lines += ["", "Problems:", *[f"- {p}" for p in problems]]
    return "\n".join(lines)


def run_gpu_check(args: argparse.Namespace, argv: list[str], model_builder, log=print) -> int:
    """Setup, then the three phases inside `args.budget_s`; returns 0 when every phase finished cleanly."""
    import torch

    # Imported here: the argument parser imports this module, and these pull in torch.
    from bench.deadline_driver import QueuedReference, run_until
    from bench.engine_side import EngineSide
    from bench.gpu_stage import Watchdog, phase_realtime, phase_throughput, phase_ttfa, run_phase
    from bench.reference import ReferenceServer

    start = time.perf_counter()
    end = start + args.budget_s
    out = args.out or RESULTS_DIR / f"gpu-check-{_device_slug(args.device)}"
    result: dict[str, Any] = {
        "machine": environment(args.device),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model": None, "phases": {}, "figures": {}, "problems": [], "elapsed_s": 0.0,
    }
    result["machine"]["command"] = "python -m bench " + " ".join(argv)
    phases: dict[str, Any] = result["phases"]

    def write() -> None:
        result["elapsed_s"] = round(time.perf_counter() - start, 1)
        result["figures"] = figures(phases)
        result["problems"] = [p for ph in phases.values() for p in ph.get("problems", [])]
        write_results(out, "gpu", result, gpu_markdown(result))

    def progress(name: str):
        def record(partial: dict[str, Any]) -> None:  # a long phase's measurements so far, on disk
            phases[name].update(partial)
            write()
        return record

    sides: dict[str, Any] = {}

    def setup(deadline: float) -> dict[str, Any]:
        bm = model_builder(args, max_audio_tokens=max(args.tokens, args.ttfa_tokens, 64))
        result["model"] = bm.describe()
        max_rows = max([*args.levels, args.throughput_concurrency])
        sides["engine"] = EngineSide(bm, max_batch_size=max_rows, vocoder_threads=args.vocoder_threads)
        sides["reference"] = QueuedReference(ReferenceServer(bm))
        for side in sides.values():  # lazy initialisation (allocator, kernels) stays out of the numbers
            run_until(side, make_requests(1, 8, seed=99), 1, deadline)
        if torch.cuda.is_available() and args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return {"status": "done"}

    watchdog = Watchdog(write)
    try:
        run_phase(phases, "setup", end - start, end, watchdog, setup, write, log)
        if phases["setup"]["status"] == "done":
            engine, reference = sides["engine"], sides["reference"]
            run_phase(phases, "ttfa", args.ttfa_timeout, end, watchdog,
                      lambda d: phase_ttfa(engine, reference, args.ttfa_requests, args.ttfa_tokens, d), write, log)
            run_phase(phases, "realtime", args.realtime_timeout, end, watchdog,
                      lambda d: phase_realtime(engine, args.levels, args.tokens, d, progress("realtime")), write, log)
            run_phase(phases, "throughput", args.throughput_timeout, end, watchdog,
                      lambda d: phase_throughput(engine, reference, args.throughput_concurrency, args.tokens, d,
                                                 progress("throughput")),
                      write, log)
    finally:
        if "engine" in sides:
            sides["engine"].close()
    write()
    log(f"results: {out}/results.json, {out}/summary.md", flush=True)
    for line in gpu_markdown(result).splitlines()[6:11]:
        log(line)
    clean = all(p.get("status") == "done" for p in phases.values()) and not result["problems"]
    return 0 if clean and len(phases) == 4 else 1
