"""The benchmark model written as a served artifact, so Triton and the in-process engine load the very same files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from bench.models import BenchModel


def export_bench_model(bm: BenchModel, output: Path) -> Path:
    """Export `bm` (its weights as they are: stop token suppressed) with `export.xtts.export_xtts`, no ONNX."""
    from export.tiny import write_tiny_vocab
    from export.xtts import export_xtts

    model = bm.model
    state = {
        k: v.detach().to("cpu", torch.float32)
        for k, v in model.state_dict().items()
        if not k.startswith("gpt.gpt_inference.") and k != "gpt.gpt.wte.weight"
    }
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp:
        ckpt = Path(tmp)
        torch.save({"model": state}, ckpt / "model.pth")
        write_tiny_vocab(ckpt / "vocab.json")  # deterministic: the same vocabulary the model was built with
        config = model.config
        config.model_args.tokenizer_file = ""
        config.save_json(str(ckpt / "config.json"))
        return export_xtts(ckpt, output, onnx=False, test_weights=True, overwrite=True,
                           source={"kind": "benchmark", "size": bm.name})
