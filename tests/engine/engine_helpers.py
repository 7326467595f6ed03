"""Helpers of the engine tests: random voices and Coqui's reference generation on the same model."""

from __future__ import annotations

import numpy as np
import torch


def voice(seed: int, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Random conditioning latents [32, dim] and a unit-norm speaker embedding [512]."""
    rng = np.random.default_rng(seed)
    cond = rng.standard_normal((32, dim)).astype(np.float32)
    speaker = rng.standard_normal(512).astype(np.float32)
    return cond, speaker / np.linalg.norm(speaker)


def reference_generate(model, text: str, language: str, cond: np.ndarray, **overrides) -> list[int]:
    """Codes from Coqui's own `gpt.generate`, called as `Xtts.inference` calls it (stop token kept)."""
    settings = dict(do_sample=False, top_p=0.85, top_k=50, temperature=0.75, length_penalty=1.0,
                    repetition_penalty=10.0)
    settings.update(overrides)
    tokens = torch.IntTensor(model.tokenizer.encode(text.strip().lower(), lang=language)).unsqueeze(0)
    with torch.inference_mode():
        codes = model.gpt.generate(
            cond_latents=torch.from_numpy(cond)[None], text_inputs=tokens, num_return_sequences=1, num_beams=1,
            output_attentions=False, **settings,
        )
    return codes[0].tolist()


def strip_stop(model, codes: list[int]) -> list[int]:
    stop = model.gpt.stop_audio_token
    return codes[: codes.index(stop)] if stop in codes else codes


def reference_latents(model, text: str, language: str, cond: np.ndarray, codes_with_stop: list[int]) -> torch.Tensor:
    """The latents `Xtts.inference` vocodes: a full parallel GPT pass, cut with its `[:, :-5]`."""
    tokens = torch.IntTensor(model.tokenizer.encode(text.strip().lower(), lang=language)).unsqueeze(0)
    codes = torch.tensor([codes_with_stop])
    with torch.inference_mode():
        latents = model.gpt(
            tokens, torch.tensor([tokens.shape[-1]]), codes,
            torch.tensor([codes.shape[-1] * model.gpt.code_stride_len]),
            cond_latents=torch.from_numpy(cond)[None], return_attentions=False, return_latent=True,
        )
    return latents[0]
