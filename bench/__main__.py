"""`python -m bench` / `tts-gateway bench`: runs a stage and records it (the stages and their options: cli_args.py)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.cli_args import build_parser
from bench.errors import StageUnavailable

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _out_dir(args: argparse.Namespace, stage: str) -> Path:
    if args.out is not None:
        return args.out
    device = args.device.replace(":", "")
    return RESULTS_DIR / f"{stage}-{args.model}-{device}"


def _setup_torch(args: argparse.Namespace) -> None:
    import torch

    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked but torch sees no CUDA device")


def _model(args: argparse.Namespace, max_audio_tokens: int):
    from bench.models import build_model

    t = time.perf_counter()
    bm = build_model(args.model, max_audio_tokens=max_audio_tokens, device=args.device, dtype=args.dtype,
                     seed=args.seed)
    print(f"model {args.model}: {bm.params / 1e6:.1f} M params on {args.device} {args.dtype} "
          f"({time.perf_counter() - t:.1f}s to build)", flush=True)
    return bm


def _record(out: Path, stage: str, args: argparse.Namespace, argv: list[str], result: dict[str, Any], md: str) -> None:
    from bench.results import machine_info, write_results

    info = machine_info(args.device)
    info["command"] = "python -m bench " + " ".join(argv)
    payload = {"machine": info, **result}
    header = (f"_{info['date']} · {info['cpu']} · {info['cores']} cores · torch {info['torch']} · device "
              f"{info.get('gpu', info['device'])} · commit {info['git_commit']}_\n\n`{info['command']}`\n\n")
    title, _, body = md.partition("\n\n")
    write_results(out, stage, payload, f"{title}\n\n{header}{body}")
    print(f"results: {out}/results.json, {out}/summary.md", flush=True)


def cmd_engine(args, argv) -> int:
    from bench.engine_stage import engine_markdown, run_engine_stage

    _setup_torch(args)
    bm = _model(args, max_audio_tokens=max(args.tokens, 64))
    result = run_engine_stage(
        bm, concurrency=args.concurrency, tokens=args.tokens, rounds=args.rounds,
        reference_max_concurrency=args.reference_max_concurrency,
        max_batch_size=args.max_batch_size or max(args.concurrency), repeats=args.repeats,
        vocoder_threads=args.vocoder_threads, vocode_batch=args.vocode_batch,
        paired_vocode_batch=args.paired_vocode_batch,
    )
    _record(_out_dir(args, "engine"), "engine", args, argv, result, engine_markdown(result))
    return 0 if not _problems(result) else 1


def cmd_length(args, argv) -> int:
    from bench.length_stage import length_markdown, run_length_stage
    from bench.workload import tokens_for_seconds

    _setup_torch(args)
    bm = _model(args, max_audio_tokens=tokens_for_seconds(max(args.seconds)) + 8)
    result = run_length_stage(bm, seconds=args.seconds, repeats=args.repeats,
                              reference_max_seconds=args.reference_max_seconds,
                              include_reference=not args.no_reference)
    _record(_out_dir(args, "length"), "length", args, argv, result, length_markdown(result))
    return 0 if not _problems(result) else 1


def cmd_triton(args, argv) -> int:
    from bench.triton_stage import run_triton_stage, triton_markdown

    _setup_torch(args)
    result = run_triton_stage(args)
    _record(_out_dir(args, "triton"), "triton", args, argv, result, triton_markdown(result))
    return 0 if not _problems(result) else 1


def cmd_gateway(args, argv) -> int:
    from bench.gateway_stage import gateway_markdown, run_gateway_stage

    _setup_torch(args)
    result = run_gateway_stage(args)
    _record(_out_dir(args, "gateway"), "gateway", args, argv, result, gateway_markdown(result))
    return 0 if not _problems(result) else 1


def cmd_profile(args, argv) -> int:
    from bench.profile_stage import profile_markdown, run_profile_stage

    _setup_torch(args)
    bm = _model(args, max_audio_tokens=max(args.tokens, 64))
    result = run_profile_stage(bm, concurrency=args.concurrency, tokens=args.tokens)
    _record(_out_dir(args, "profile"), "profile", args, argv, result, profile_markdown(result))
    return 0


def cmd_load(args, argv) -> int:
    from bench.load_stage import load_markdown, run_load_stage

    result = run_load_stage(args)
    out = args.out or Path(__file__).resolve().parent / "results" / f"load-{args.engine}-cpu"
    _record(out, "load", args, argv, result, load_markdown(result))
    # A test runner's closing line, so a CI log that ends with the load run ends with its verdict.
    print(f"load {args.engine}: {result['checks_passed']} passed, {result['checks_failed']} failed")
    return 0 if not result["problems"] else 1


def cmd_realtime(args, argv) -> int:
    from bench.realtime_stage import realtime_markdown, run_realtime_stage

    result = run_realtime_stage(args.rounds)
    out = args.out or RESULTS_DIR / "realtime-piper-cpu"
    _record(out, "realtime", args, argv, result, realtime_markdown(result))
    return 0


def cmd_engine_fairness(args, argv) -> int:
    from bench.engine_fairness_stage import engine_fairness_markdown, run_engine_fairness_stage

    result = run_engine_fairness_stage(args.workers, args.backlog, args.quiet_requests, args.interval,
                                       args.completions)
    out = args.out or RESULTS_DIR / "engine-fairness-piper-cpu"
    _record(out, "engine-fairness", args, argv, result, engine_fairness_markdown(result))
    print(engine_fairness_markdown(result))
    return 0


def cmd_engine_lanes(args, argv) -> int:
    from bench.engine_lanes_stage import engine_lanes_markdown, run_engine_lanes_stage

    result = run_engine_lanes_stage(args.variants, args.rounds, args.backlog, args.quiet_requests, args.interval,
                                    args.completions)
    out = args.out or RESULTS_DIR / "engine-lanes-piper-cpu"
    _record(out, "engine-lanes", args, argv, result, engine_lanes_markdown(result))
    print(engine_lanes_markdown(result))
    return 0


def cmd_fairness(args, argv) -> int:
    from bench.fairness_stage import fairness_markdown, run_fairness_stage

    result = run_fairness_stage(args)
    out = args.out or RESULTS_DIR / "fairness-piper-cpu"
    _record(out, "fairness", args, argv, result, fairness_markdown(result))
    print(fairness_markdown(result))
    return 0


def cmd_first_segment(args, argv) -> int:
    from bench.first_segment_stage import first_segment_markdown, run_first_segment_stage

    result = run_first_segment_stage(args.rounds)
    out = args.out or RESULTS_DIR / "first-segment-piper-cpu"
    _record(out, "first-segment", args, argv, result, first_segment_markdown(result))
    return 0


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def cmd_ttfa(args, argv) -> int:
    from bench.ttfa_report import ttfa_markdown
    from bench.ttfa_stage import run_ttfa_stage

    result = run_ttfa_stage(args.engines, args.rounds, _env_pairs(args.api_env), _env_pairs(args.triton_env))
    out = args.out or RESULTS_DIR / "ttfa-cpu"
    _record(out, "ttfa", args, argv, result, ttfa_markdown(result))
    for model, r in result["engines"].items():
        print(f"ttfa {model}: engine {r['engine_first_ms']} ms, direct {r['direct_first_ms']} ms, gateway "
              f"{r['gateway_first_ms']} ms, gateway/engine {r['gateway_over_engine']}")
    return 0


def cmd_routing(args, argv) -> int:
    from bench.routing_stage import routing_markdown, run_routing_stage

    result = run_routing_stage(args)
    out = args.out or RESULTS_DIR / "routing-piper-cpu"
    _record(out, "routing", args, argv, result, routing_markdown(result))
    return 0


def cmd_quick(args, argv) -> int:
    from bench.quick import run_quick

    _setup_torch(args)
    return run_quick(args, argv, _model, _record, _out_dir(args, "quick"))


def cmd_gpu(args, argv) -> int:
    from bench.gpu_check import run_gpu_check

    _setup_torch(args)
    return run_gpu_check(args, argv, _model)


def cmd_all(args, argv) -> int:
    out = _out_dir(args, "all")
    rc = 0
    common = ["--model", args.model, "--device", args.device, "--dtype", args.dtype, "--out", str(out)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    conc = ",".join(map(str, args.concurrency))
    secs = ",".join(f"{s:g}" for s in args.seconds)
    runs = [
        ["engine", *common, "--concurrency", conc, "--tokens", str(args.tokens)],
        ["length", *common, "--seconds", secs],
        ["profile", *common, "--tokens", str(args.tokens)],
        ["triton", *common, "--tokens", str(args.tokens)],
        ["gateway", *common],
    ]
    for stage_argv in runs:
        print(f"== {stage_argv[0]}", flush=True)
        try:
            rc |= main(stage_argv)
        except StageUnavailable as exc:
            print(f"   skipped: {exc}", flush=True)
    rc |= main(["plot", str(out)])
    return rc


def cmd_plot(args, argv) -> int:
    from bench.plots import plot_folder

    for path in plot_folder(args.folder):
        print(f"wrote {path}")
    return 0


def _problems(result: Any) -> list[str]:
    """Every 'problems' list anywhere in a result (wrong token counts, failed requests)."""
    found: list[str] = []
    if isinstance(result, dict):
        for key, value in result.items():
            if key == "problems" and isinstance(value, list):
                found += value
            else:
                found += _problems(value)
    elif isinstance(result, list):
        for value in result:
            found += _problems(value)
    if found and result is not None and isinstance(result, dict) and "levels" in result:
        for p in found[:10]:
            print(f"PROBLEM: {p}", file=sys.stderr)
    return found


COMMANDS = {
    "engine": cmd_engine, "length": cmd_length, "triton": cmd_triton, "gateway": cmd_gateway,
    "profile": cmd_profile, "quick": cmd_quick, "all": cmd_all, "plot": cmd_plot, "load": cmd_load,
    "realtime": cmd_realtime, "first-segment": cmd_first_segment, "engine-fairness": cmd_engine_fairness,
    "engine-lanes": cmd_engine_lanes,
    "routing": cmd_routing, "fairness": cmd_fairness,
    "ttfa": cmd_ttfa,
    "gpu": cmd_gpu,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    return COMMANDS[args.stage](args, argv)


if __name__ == "__main__":
    sys.exit(main())
