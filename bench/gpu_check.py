"""`python -m bench gpu` (what `bench/gpu_check.sh` runs): the GPU check's setup, phases, figures and report.

Writes `<out>/results.json` (under `stages.gpu`) and `<out>/summary.md` when a phase starts, as it
measures and when it ends, so a run stopped anywhere leaves what it measured and which phase stopped.
Weights are random and seeded (the released XTTS-v2 weights are not used): timings do not depend on
weight values.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
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


def _status(name: str, phase: dict[str, Any]) -> str:
    return f"{name} {phase.get('status')} ({phase.get('seconds', '–')} s)"


def gpu_markdown(result: dict[str, Any]) -> str:
    """The summary of whatever the phases recorded so far: a figure a phase never reached shows as –."""
    m, f, ph = result.get("machine") or {}, result.get("figures") or {}, result.get("phases") or {}
    where = (f"{m.get('gpu')} (driver {m.get('driver')}, CUDA {m.get('cuda')}, {m.get('gpu_memory_gib')} GiB)"
             if m.get("gpu") else f"{m.get('cpu')} ({m.get('cores')} cores, no GPU)")
    model = result.get("model") or {}
    lines = [
        "## GPU check", "",
        f"_{m.get('date')} · {where} · torch {m.get('torch')} · transformers {m.get('transformers')} · "
        f"coqui-tts {m.get('coqui-tts')} · numpy {m.get('numpy')} · commit {m.get('git_commit')}_", "",
        f"Model `{model.get('name')}` ({(model.get('params') or 0) / 1e6:.1f} M params, "
        f"{model.get('dtype')}, {model.get('weights')}); {result.get('elapsed_s')} s in all.", "",
        md_table(["figure", "engine", "reference", "ratio"], [
            ["time to first audio, concurrency 1, median ms", f.get("ttfa_median_ms_engine"),
             f.get("ttfa_median_ms_reference"), None],
            ["most concurrent streams all faster than real time", f.get("max_realtime_concurrency"), None, None],
            [f"audio s per s at concurrency {f.get('throughput_concurrency')}",
             f.get("throughput_engine_audio_s_per_s"), f.get("throughput_reference_audio_s_per_s"),
             f.get("throughput_ratio")],
        ]), "",
        "Phases: " + ", ".join(_status(k, v) for k, v in ph.items()) + ".",
    ]
    rt = ph.get("realtime") or {}
    if rt.get("levels"):
        lines += ["", f"Real-time search ({rt.get('tokens_per_request', '–')} tokens per stream): "
                      f"{rt.get('outcome') or rt.get('status')}.", "",
                  md_table(["streams", "RTF max", "RTF p95", "TTFA p50 ms", "TTFA p95 ms", "audio s/s", "rows/step",
                            "all < 1"],
                           [[r.get(k) for k in ("concurrency", "rtf_max", "rtf_p95", "ttfa_p50_ms", "ttfa_p95_ms",
                                                "audio_s_per_wall_s", "avg_batch", "realtime")]
                            for r in rt["levels"]])]
    tp = ph.get("throughput") or {}
    if tp.get("passes"):
        lines += ["", f"Throughput passes ({tp.get('tokens_per_request', '–')} tokens per request):", "",
                  md_table(["side", "completed", "cut", "wall s", "audio s", "audio s/s", "TTFA p95 ms"],
                           [[p.get(k) for k in ("side", "completed", "cut", "wall_s", "audio_s", "audio_s_per_wall_s",
                                                "ttfa_p95_ms")] for p in tp["passes"]])]
    problems = [f"{k}: {v['error']}" for k, v in ph.items() if v.get("error")] + list(result.get("problems") or [])[:10]
    if problems:
        lines += ["", "Problems:", *[f"- {p}" for p in problems]]
    return "\n".join(lines)


def summary_markdown(result: dict[str, Any]) -> str:
    """`gpu_markdown`, or where even that fails, the phases and their errors: the summary never stops a write."""
    try:
        return gpu_markdown(result)
    except Exception as exc:  # noqa: BLE001 - the figures are in results.json either way
        phases = result.get("phases") or {}
        return "\n".join([
            "## GPU check", "", f"The summary could not be drawn ({type(exc).__name__}: {exc}); results.json holds "
            "every figure recorded.", "",
            *[f"- {_status(k, v)}" + (f": {v['error']}" if v.get("error") else "") for k, v in phases.items()],
        ])


class GpuRecord:
    """The check's result as it grows, rewritten to results.json and summary.md after every change.

    Phases put their measurements so far in through `progress`, so whichever way a phase ends (done,
    cut, error, the watchdog, a signal, or a kill the wrapper notes afterwards) the files hold them.
    """

    def __init__(self, out: Path, result: dict[str, Any], start: float | None = None) -> None:
        self.out, self.result, self.start = out, result, start
        self.phases: dict[str, Any] = result.setdefault("phases", {})
        self._lock = threading.RLock()  # the watchdog's thread writes too; a signal handler may re-enter

    def write(self) -> None:
        with self._lock:
            if self.start is not None:
                self.result["elapsed_s"] = round(time.perf_counter() - self.start, 1)
            self.result["figures"] = figures(self.phases)
            self.result["problems"] = [p for ph in self.phases.values() for p in ph.get("problems") or []]
            write_results(self.out, "gpu", self.result, summary_markdown(self.result))

    def progress(self, name: str) -> Callable[[dict[str, Any]], None]:
        def record(partial: dict[str, Any]) -> None:  # a long phase's measurements so far, on disk
            self.phases[name].update(partial)
            self.write()
        return record

    def end_running(self, reason: str) -> None:
        """The process is ending under a running phase: mark it, keeping what it recorded."""
        for phase in self.phases.values():
            if phase.get("status") == "running":
                phase.update(status="killed", error=reason)

    @contextlib.contextmanager
    def written_on_sigterm(self) -> Iterator[None]:
        """A SIGTERM (the wrapper's hard limit sends one before its kill) marks the running phase and
        writes before the process ends; the handler runs once the main thread's current call returns."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ended(signum: int, frame: Any) -> None:
            elapsed = round(time.perf_counter() - self.start, 1) if self.start is not None else "?"
            self.end_running(f"process ended by {signal.Signals(signum).name} {elapsed} s in (a hard time limit)")
            try:
                self.write()
            finally:
                os._exit(128 + signum)

        previous = signal.signal(signal.SIGTERM, ended)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


def mark_ended(out: Path, reason: str) -> bool:
    """After the process was killed (SIGKILL leaves it no last write): a phase results.json still shows
    running is marked ended with `reason`, and summary.md is redrawn. False when there is nothing to mark."""
    try:
        result = json.loads((out / "results.json").read_text())["stages"]["gpu"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    record = GpuRecord(out, result)
    if not any(p.get("status") == "running" for p in record.phases.values()):
        return False
    record.end_running(reason)
    record.write()
    return True


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
    record = GpuRecord(Path(out), result, start)
    phases, write, progress = record.phases, record.write, record.progress

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
        with record.written_on_sigterm():
            run_phase(phases, "setup", end - start, end, watchdog, setup, write, log)
            if phases["setup"]["status"] == "done":
                engine, reference = sides["engine"], sides["reference"]
                run_phase(phases, "ttfa", args.ttfa_timeout, end, watchdog,
                          lambda d: phase_ttfa(engine, reference, args.ttfa_requests, args.ttfa_tokens, d,
                                               progress("ttfa")), write, log)
                run_phase(phases, "realtime", args.realtime_timeout, end, watchdog,
                          lambda d: phase_realtime(engine, args.levels, args.tokens, d, progress("realtime")),
                          write, log)
                run_phase(phases, "throughput", args.throughput_timeout, end, watchdog,
                          lambda d: phase_throughput(engine, reference, args.throughput_concurrency, args.tokens, d,
                                                     progress("throughput")),
                          write, log)
    finally:
        if "engine" in sides:
            sides["engine"].close()
    write()
    log(f"results: {out}/results.json, {out}/summary.md", flush=True)
    for line in summary_markdown(result).splitlines()[6:11]:
        log(line)
    clean = all(p.get("status") == "done" for p in phases.values()) and not result["problems"]
    return 0 if clean and len(phases) == 4 else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.gpu_check ended OUT REASON`: what bench/gpu_check.sh runs after a killed check."""
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check")
    sub = p.add_subparsers(dest="command", required=True)
    ended = sub.add_parser("ended", help="mark the phase a killed check left running, and redraw summary.md")
    ended.add_argument("out", type=Path)
    ended.add_argument("reason")
    args = p.parse_args(argv)
    print("marked the running phase: " + args.reason if mark_ended(args.out, args.reason)
          else "no running phase to mark", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
