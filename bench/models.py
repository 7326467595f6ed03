"""Benchmark models: the XTTS-v2 architecture at several sizes with seeded random weights.

Compute does not depend on weight values, so random weights give real timings. A random GPT
almost never emits the stop token but could, which would make the two sides generate different
amounts of audio; the stop token's output bias is therefore pushed far down (on the shared
module, so both sides see it) and every request asks for exactly N tokens.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# Overrides of XttsConfig().model_args per size; `full` is the released XTTS-v2 architecture.
_RELEASED = {
    "gpt_num_audio_tokens": 1026,
    "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025,
    "gpt_use_perceiver_resampler": True,
}
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"gpt_layers": 2, "gpt_n_model_channels": 128, "gpt_n_heads": 4, "decoder_input_dim": 128, **_RELEASED},
    "medium": {"gpt_layers": 12, "gpt_n_model_channels": 512, "gpt_n_heads": 8, "decoder_input_dim": 512, **_RELEASED},
    "full": {**_RELEASED},  # 30 layers x 1024 channels, 16 heads, decoder_input_dim 1024
}
STOP_BIAS = -1.0e4  # finite, so fp16 logits stay finite
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class BenchModel:
    name: str
    model: Any  # TTS.tts.models.xtts.Xtts, eval mode, inference GPT ready
    device: torch.device
    dtype: torch.dtype
    gpt_cond_latent: torch.Tensor  # [1, 32, D]
    speaker_embedding: torch.Tensor  # [1, 512, 1]
    max_audio_tokens: int

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> dict[str, Any]:
        gpt = self.model.gpt
        return {
            "name": self.name,
            "params": self.params,
            "gpt_layers": gpt.layers,
            "gpt_model_dim": gpt.model_dim,
            "gpt_heads": gpt.heads,
            "max_audio_tokens": self.max_audio_tokens,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "weights": "random (seeded), stop token suppressed",
        }


def bench_config(size: str, max_audio_tokens: int):
    """XttsConfig of a benchmark size; the audio position table holds `max_audio_tokens` tokens."""
    from TTS.tts.configs.xtts_config import XttsConfig

    from tts_contract.languages import XTTS_LANGUAGES

    if size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(MODEL_SIZES)}")
    config = XttsConfig()
    for key, value in MODEL_SIZES[size].items():
        setattr(config.model_args, key, value)
    # The generator can produce max_audio_tokens - 3 tokens (32 cond latents are counted separately).
    config.model_args.gpt_max_audio_tokens = max_audio_tokens + 3
    config.languages = list(XTTS_LANGUAGES)
    return config


def build_model(
    size: str = "tiny", *, max_audio_tokens: int = 256, device: str = "cpu", dtype: str = "fp32", seed: int = 0
) -> BenchModel:
    """A ready Xtts of `size` with seeded random weights, plus one seeded voice (cond latents, speaker embedding)."""
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    from export.tiny import write_tiny_vocab

    config = bench_config(size, max_audio_tokens)
    torch.manual_seed(seed)
    model = Xtts(config)
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(tmp) / "vocab.json"
        write_tiny_vocab(vocab)
        model.tokenizer = VoiceBpeTokenizer(vocab_file=str(vocab))
    model.init_models()  # sets the text vocabulary size from the tokenizer
    model.gpt.init_gpt_for_inference(kv_cache=True, use_deepspeed=False)
    model.eval()
    with torch.no_grad():
        model.gpt.mel_head.bias[model.gpt.stop_audio_token] = STOP_BIAS
    torch_device = torch.device(device)
    torch_dtype = DTYPES[dtype]
    model.to(torch_device)
    if torch_dtype != torch.float32:
        # As the engine serves it: the GPT in half precision, HiFi-GAN and the speaker path in float32.
        model.gpt.to(torch_dtype)
    generator = torch.Generator().manual_seed(seed + 1)
    dim = model.gpt.model_dim
    cond = (0.5 * torch.randn(1, 32, dim, generator=generator)).to(torch_device, torch_dtype)
    speaker = (0.1 * torch.randn(1, 512, 1, generator=generator)).to(torch_device)
    return BenchModel(size, model, torch_device, torch_dtype, cond, speaker, max_audio_tokens)
