"""Decode throughput of the engine at fixed batch sizes (no vocoding): steps/s and tokens/s.

    python -m tts_engine.xtts.benchmark --artifact PATH [--device auto] [--batch 1 4 8 16] [--tokens 60]
    python -m tts_engine.xtts.benchmark --tiny          # builds the tiny random model in a temp folder

Requests sample with the released defaults and may stop early (a batch can then shrink), so the
report counts the real decode steps and tokens from EngineStats rather than assuming them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.offline import CodeRequest
from tts_engine.xtts.types import SynthesisParams

TEXT = "the quick brown fox jumps over the lazy dog, and then it runs far away into the woods."


def decode_throughput(engine: XttsEngine, batch_sizes: list[int], tokens: int,
                      repeats: int = 2) -> list[dict[str, float]]:
    """For each batch size: all requests join at step 0 and run `tokens` tokens (or to their stop token)."""
    rng = np.random.default_rng(0)
    results = []
    for batch in batch_sizes:
        best: dict[str, float] | None = None
        for _ in range(repeats):
            requests = [
                CodeRequest(TEXT, "en", rng.standard_normal((32, engine.model_dim)).astype(np.float32),
                            SynthesisParams(seed=i, max_new_tokens=tokens))
                for i in range(batch)
            ]
            steps0, tokens0 = engine.stats.decode_steps, engine.stats.tokens_generated
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            engine.generate_codes(requests)
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            steps = engine.stats.decode_steps - steps0
            generated = engine.stats.tokens_generated - tokens0
            run = {"batch": batch, "steps": steps, "tokens": generated, "seconds": seconds,
                   "steps_per_s": steps / seconds, "tokens_per_s": generated / seconds}
            if best is None or run["seconds"] < best["seconds"]:
                best = run
        assert best is not None, "repeats must be >= 1"
        results.append(best)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--artifact", type=Path)
    source.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        from export.tiny import build_tiny_checkpoint
        from export.xtts import export_xtts

        folder = Path(tempfile.mkdtemp())
        artifact = export_xtts(build_tiny_checkpoint(folder / "ckpt"), folder / "xtts", onnx=False, test_weights=True)
    else:
        artifact = args.artifact
    engine = XttsEngine.from_artifact(artifact, device=args.device, max_batch_size=max(args.batch))
    engine.generate_codes([CodeRequest(TEXT, "en", np.zeros((32, engine.model_dim), np.float32))])  # warm-up
    results = decode_throughput(engine, args.batch, args.tokens)
    info = {"device": str(engine.device), "dtype": str(engine.dtype), "threads": torch.get_num_threads()}
    print(json.dumps({**info, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
