"""`python -m bench` / `tts-gateway bench`: run a benchmark stage and record it under bench/results/<name>/.

Stages: engine (in-process engine vs the reference across concurrency), length (cost against
utterance length, streamed and not), triton (the same streams over gRPC through a real Triton),
gateway (HTTP streaming through the control plane vs calling Triton directly), profile (where
the engine loop's time goes), first-segment (first audio with the first sentence cut short),
engine-fairness (a flooding and a quiet tenant through Piper's fair queue, FIFO vs fair), fairness (fair
shares, goodput under overload, a burst and the cost of a refusal through the real gateway and Triton), ttfa (time
to first audio through each layer, stage by stage), quick (the key ratios in under 5 minutes on a 2-core
CPU), gpu (the one-go GPU check: time to first audio, streams
kept real time, throughput at concurrency 32; see bench/gpu_check.sh), all (every stage, then plots),
plot (PNGs of a folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.errors import StageUnavailable

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _add_model_args(p: argparse.ArgumentParser, default_model: str = "tiny") -> None:
    p.add_argument("--model", choices=["tiny", "medium", "full"], default=default_model,
                   help="architecture size, random seeded weights (full = XTTS-v2, 467 M params)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default 1 on cpu: a shared 2-core box is oversubscribed by 2; "
                        "torch's choice on cuda)")
    p.add_argument("--seed", type=int, default=0, help="weight seed")
    p.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/STAGE-MODEL-DEVICE)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)

    p = sub.add_parser("engine", help="in-process engine vs reference across concurrency")
    _add_model_args(p)
    p.add_argument("--concurrency", type=_ints, default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--tokens", type=int, default=64, help="audio tokens per request (21.53 = 1 s)")
    p.add_argument("--rounds", type=int, default=1, help="requests per client at each level")
    p.add_argument("--repeats", type=int, default=1, help="alternating passes per side at each level, pooled")
    p.add_argument("--reference-max-concurrency", type=int, default=16,
                   help="skip the reference above this (it serves one stream at a time: its throughput is flat)")
    p.add_argument("--max-batch-size", type=int, default=None, help="engine rows (default: the largest concurrency)")
    p.add_argument("--vocoder-threads", type=int, default=1, help="the engine's vocoder threads (XTTS_VOCODER_THREADS)")
    p.add_argument("--vocode-batch", type=int, default=None,
                   help="windows per HiFi-GAN call of the engine's vocoder thread (XTTS_VOCODE_BATCH; "
                        "default: 8 on cuda, 1 on cpu)")
    p.add_argument("--paired-vocode-batch", type=int, default=None,
                   help="also run an engine with this XTTS_VOCODE_BATCH on the same requests, passes alternating "
                        "(e.g. 1: batched vs one window at a time)")

    p = sub.add_parser("length", help="cost against utterance length, streaming vs not, ours vs reference")
    _add_model_args(p)
    p.add_argument("--seconds", type=_floats, default=[5, 15, 30, 60])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--reference-max-seconds", type=float, default=30)
    p.add_argument("--no-reference", action="store_true")

    p = sub.add_parser("triton", help="streams over gRPC through a real Triton vs the engine in process")
    _add_model_args(p)
    p.add_argument("--concurrency", type=_ints, default=[1, 2, 4, 8, 16])
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="alternating passes per side at each level, pooled")

    p = sub.add_parser("gateway", help="HTTP streaming through the control plane vs calling Triton directly")
    _add_model_args(p)
    p.add_argument("--requests", type=int, default=30, help="sequential requests per path (latency)")
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--cached-seconds", type=float, default=5.0, help="how long to hammer a cached response")

    p = sub.add_parser("profile", help="where the engine loop's time goes at one concurrency")
    _add_model_args(p)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--tokens", type=int, default=64)

    p = sub.add_parser("load", help="many concurrent streams through the gateway for a while; leaks, usage, errors")
    p.add_argument("--engine", choices=["piper", "xtts"], default="piper")
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=None, help="torch/OMP threads of Triton (default 1)")
    p.add_argument("--admission-max-wait", type=float, default=None,
                   help="the gateway's ADMISSION_MAX_WAIT_S (default: its own default; 0 = admit everything)")
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(device="cpu")

    p = sub.add_parser("realtime", help="WebSocket time to first audio and barge-in latency (bundled voice)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(device="cpu")

    p = sub.add_parser("engine-fairness", help="a flooding and a quiet tenant through Piper's fair queue, in process "
                                               "(FIFO vs fair in one run; weights 3:1)")
    p.add_argument("--workers", type=int, default=4,
                   help="synthesis threads (piper's workers_per_instance)")
    p.add_argument("--backlog", type=int, default=10, help="requests each flooding tenant keeps outstanding")
    p.add_argument("--quiet-requests", type=int, default=6, help="requests the quiet tenant sends per scenario")
    p.add_argument("--interval", type=float, default=2.0,
                   help="seconds between the quiet tenant's requests (stretched to 3x its service time if longer)")
    p.add_argument("--completions", type=int, default=24, help="finished requests the weights 3:1 scenario counts")
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(device="cpu")

    p = sub.add_parser("fairness", help="fair shares through the real gateway and Triton: noisy neighbour, weights "
                                        "3:1, goodput under overload, a burst, the cost of a refusal (bundled voice)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each loaded scenario")
    p.add_argument("--saturate", type=int, default=8, help="closed-loop clients that keep the engine busy")
    p.add_argument("--flood", type=int, default=48, help="clients of the flooding tenant (honouring Retry-After)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between the quiet tenant's requests")
    p.add_argument("--quiet-requests", type=int, default=8, help="the quiet tenant's requests alone")
    p.add_argument("--burst", type=int, default=120, help="requests arriving in the same instant")
    p.add_argument("--refusals", type=int, default=300, help="sequential refusals timed per surface")
    p.add_argument("--workers", type=int, default=2, help="also the burst and refusal cost with this many uvicorn "
                                                          "workers (1: skip)")
    p.add_argument("--compare-checkout", type=Path, default=None,
                   help="another checkout of this repository: its control plane's refusal cost beside this one's")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the --compare-checkout comparison")
    p.add_argument("--only-paired", action="store_true", help="with --compare-checkout: only that comparison")
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(device="cpu")

    p = sub.add_parser("first-segment", help="first audio with the first sentence cut short vs the whole sentence")
    p.add_argument("--rounds", type=int, default=8, help="passes over the 12-word sentences")
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(device="cpu")

    p = sub.add_parser("ttfa", help="time to first audio: engine, Triton direct, gateway, per-stage breakdown")
    p.add_argument("--engines", type=lambda t: [x for x in t.split(",") if x], default=["piper", "xtts"])
    p.add_argument("--rounds", type=int, default=12, help="fresh sentences per engine (each through all paths)")
    p.add_argument("--api-env", action="append", default=[], metavar="KEY=VALUE", help="extra gateway env")
    p.add_argument("--triton-env", action="append", default=[], metavar="KEY=VALUE", help="extra Triton env")
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(device="cpu")

    p = sub.add_parser("routing", help="streams over several Triton replicas: TritonPool vs gRPC round_robin")
    p.add_argument("--policies", type=lambda t: [x for x in t.split(",") if x], default=["pool", "round_robin"])
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(device="cpu")

    p = sub.add_parser("quick", help="the key ratios in under 5 minutes (make bench-quick)")
    _add_model_args(p)
    p.add_argument("--skip-gateway", action="store_true")

    p = sub.add_parser("gpu", help="the one-go GPU check (bench/gpu_check.sh installs and runs it)")
    _add_model_args(p, default_model="full")
    p.set_defaults(device="cuda", dtype="fp16")
    from bench.gpu_check import add_gpu_args

    add_gpu_args(p)

    p = sub.add_parser("all", help="every stage, then the plots")
    _add_model_args(p)
    p.add_argument("--concurrency", type=_ints, default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--seconds", type=_floats, default=[5, 15, 30, 60])

    p = sub.add_parser("plot", help="PNG plots of a results folder")
    p.add_argument("folder", type=Path)
    return parser


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
