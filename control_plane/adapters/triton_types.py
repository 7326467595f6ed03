"""What the Triton adapter hands back: audio chunks, model info, conditioning, and its errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prometheus_client.parser import text_string_to_metric_families


class TritonError(Exception):
    """Triton answered with an error for this request (bad input, model failure)."""


class TritonUnavailable(TritonError):
    """Triton cannot be reached or the model is not ready; worth retrying later."""


class TritonTimeout(TritonError):
    """The call ran past TRITON_REQUEST_TIMEOUT_S."""


@dataclass(frozen=True)
class AudioChunk:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    # Words this chunk speaks, when the engine times them: (char_start, char_end, start, end), character
    # offsets into the request's text and sample offsets into this chunk.
    words: tuple[tuple[int, int, int, int], ...] | None = None


@dataclass(frozen=True)
class ModelInfo:
    model: str
    model_version: str
    test_weights: bool
    labels: dict[str, str]


@dataclass(frozen=True)
class Conditioning:
    gpt_cond_latent: np.ndarray  # float32 [32, D]
    speaker_embedding: np.ndarray  # float32 [512]


def parse_model_info(metrics_text: str) -> dict[str, ModelInfo]:
    info: dict[str, ModelInfo] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "tts_model_info":
            continue
        for sample in family.samples:
            labels = dict(sample.labels)
            model = labels.get("model")
            if not model:
                continue
            info[model] = ModelInfo(
                model=model,
                model_version=labels.get("model_version", ""),
                test_weights=labels.get("test_weights", "false").lower() == "true",
                labels=labels,
            )
    return info
