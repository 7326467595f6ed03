"""`python -m bench` / `tts-gateway bench`: run a benchmark stage and record it under bench/results/<name>/.

Stages: engine (in-process engine vs the reference across concurrency), length (cost against
utterance length, streamed and not), triton (the same streams over gRPC through a real Triton),
gateway (HTTP streaming through the control plane vs calling Triton directly), profile (where
the engine loop's time goes), first-segment (first audio with the first sentence cut short),
engine-fairness (a flooding and a quiet tenant through Piper's fair queue, FIFO vs fair), engine-lanes (Piper's
pool variants: the express lane and session options against the pool before them), fairness (fair
shares, goodput under overload, a burst and the cost of a refusal through the real gateway and Triton), ttfa (time
to first audio through each layer, stage by stage), quick (the key ratios in under 5 minutes on a 2-core
CPU), gpu (the one-go GPU check: time to first audio, streams
kept real time, throughput at concurrency 32; see bench/gpu_check.sh), all (every stage, then plots),
plot (PNGs of a folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


FAIRNESS_SCENARIOS = ("quiet", "saturation", "noisy", "weights", "burst", "refusals")  # in the order they run


def _scenarios(text: str) -> frozenset[str]:
    chosen = frozenset(x.strip() for x in text.split(",") if x.strip())
    if not chosen or chosen - set(FAIRNESS_SCENARIOS):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(FAIRNESS_SCENARIOS)}")
    return chosen


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

    p = sub.add_parser("engine-lanes", help="Piper's pool variants in alternating rounds, in process: the express "
                                            "lane and session options against the pool before them")
    p.add_argument("--variants", nargs="+", default=["before", "one-thread", "express"],
                   choices=["before", "one-thread", "express"], help="the first is the baseline of the ratios")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--backlog", type=int, default=10, help="requests each flooding tenant keeps outstanding")
    p.add_argument("--quiet-requests", type=int, default=6, help="requests the quiet tenant sends per scenario")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between the quiet tenant's requests")
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
    p.add_argument("--scenarios", type=_scenarios, default=None,
                   help="comma-separated scenarios to run, of quiet, saturation, noisy, weights, burst, refusals "
                        "(default: all; e.g. weights alone while iterating)")
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
