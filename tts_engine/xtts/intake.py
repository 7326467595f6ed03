"""Request intake: validating and tokenising a request into a batcher `Job` (nothing is queued here).

Everything a bad request can get wrong is found here and raised as ValueError naming the field, so
the decode loop only ever sees jobs it can run.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import torch

from tts_contract.languages import CHAR_LIMITS, normalise_language
from tts_contract.tensors import SPEAKER_EMBEDDING_DIM
from tts_engine.xtts.batcher import Job
from tts_engine.xtts.prefix_cache import PrefixCache, voice_key
from tts_engine.xtts.text import split_text
from tts_engine.xtts.types import SynthesisParams


def _as_tensor(value: Any) -> torch.Tensor:
    return value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value, dtype=np.float32))


class RequestIntake:
    """The model's limits, and the checks and tokenisation every request goes through."""

    def __init__(self, model: Any, *, device: torch.device, dtype: torch.dtype, max_cond_tokens: int | None,
                 prefix_cache: PrefixCache):
        gpt = model.gpt
        self.tokenizer = model.tokenizer
        self.device = device
        self.dtype = dtype
        self.model_dim = int(gpt.model_dim)
        self.max_gen_tokens = int(gpt.max_gen_mel_tokens)
        self.max_text_tokens = int(model.args.gpt_max_text_tokens)
        self.uses_perceiver = bool(gpt.use_perceiver_resampler)
        self.max_cond_tokens = 32 if self.uses_perceiver else int(max_cond_tokens or 512)
        self.prefix_cache = prefix_cache

    @property
    def max_seq(self) -> int:
        """KV-cache positions one row needs: conditioning, text with its start/stop, audio tokens."""
        return self.max_cond_tokens + self.max_text_tokens + 2 + self.max_gen_tokens + 1

    def cond_tensor(self, latent: Any) -> torch.Tensor:
        tensor = _as_tensor(latent)
        if tensor.ndim == 3 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 2 or tensor.shape[1] != self.model_dim:
            raise ValueError(f"gpt_cond_latent must have shape [N, {self.model_dim}], got {list(tensor.shape)}")
        n = tensor.shape[0]
        if self.uses_perceiver and n != 32:
            raise ValueError(f"gpt_cond_latent must have 32 rows for this model, got {n}")
        if not 1 <= n <= self.max_cond_tokens:
            raise ValueError(f"gpt_cond_latent must have 1..{self.max_cond_tokens} rows, got {n}")
        if not torch.isfinite(tensor).all():
            raise ValueError("gpt_cond_latent contains NaN or infinite values")
        return tensor.to(self.device, self.dtype)

    def speaker_tensor(self, embedding: Any) -> torch.Tensor:
        """A speaker embedding as the vocoder takes it: [1, 512, 1] float32 on the engine device."""
        if embedding is None:
            raise ValueError("speaker_embedding is required")
        tensor = _as_tensor(embedding).float()
        if tensor.numel() != SPEAKER_EMBEDDING_DIM or tensor.shape[-1] not in (SPEAKER_EMBEDDING_DIM, 1):
            raise ValueError(f"speaker_embedding must have {SPEAKER_EMBEDDING_DIM} values, got {list(tensor.shape)}")
        if not torch.isfinite(tensor).all():
            raise ValueError("speaker_embedding contains NaN or infinite values")
        return tensor.reshape(1, SPEAKER_EMBEDDING_DIM, 1).to(self.device)

    def tokenize(self, text: str, language: str) -> list[list[int]]:
        """Token ids per segment (segments within the tokenizer's character limit for `language`)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string")
        limit = min(CHAR_LIMITS[language], self.tokenizer.char_limits.get(language, CHAR_LIMITS[language]))
        sentences = []
        for segment in split_text(text, language, limit):
            segment = segment.strip().lower()
            try:
                tokens = self.tokenizer.encode(segment, lang=language)
            except Exception as exc:  # never echo the text
                reason = type(exc).__name__
                raise ValueError(f"text could not be tokenised for language {language!r}: {reason}") from None
            if len(tokens) >= self.max_text_tokens:
                limit = self.max_text_tokens
                raise ValueError(f"a sentence has {len(tokens)} tokens; the model takes fewer than {limit}")
            sentences.append(tokens)
        if not sentences:
            raise ValueError("text must be a non-empty string")
        return sentences

    def make_job(self, text: str, language: str, gpt_cond_latent: Any, params: SynthesisParams) -> Job:
        if not isinstance(params, SynthesisParams):
            raise ValueError("params must be a SynthesisParams")
        params.validate()
        language = normalise_language(language)
        cond = self.cond_tensor(gpt_cond_latent)
        sentences = self.tokenize(text, language)
        max_new = min(params.max_new_tokens or self.max_gen_tokens, self.max_gen_tokens)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        generator = torch.Generator().manual_seed(seed)
        key = voice_key(cond) if self.prefix_cache.enabled and cond.shape[0] else None
        return Job(sentences=sentences, cond_latent=cond, params=params, max_new_tokens=max_new, generator=generator,
                   prefix_key=key)
