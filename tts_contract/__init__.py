"""What the control plane and the Triton models agree on; standard library only (no torch, no numpy).

- `tensors`: each model's input and output tensors, the cancel request convention.
- `audio`: the engines' native sample rates.
- `languages`: languages per engine, the XTTS tokenizer's per-language text limits.
- `limits`: text length, speed/pitch/volume bounds, reference-audio bounds.
- `sentences`: the sentence splitter (plans, model segments, streamed text).
"""

from tts_contract.audio import NATIVE_RATES, PIPER_SAMPLE_RATE, XTTS_SAMPLE_RATE
from tts_contract.languages import (
    CHAR_LIMITS,
    DEFAULT_CHAR_LIMIT,
    LANGUAGES,
    PIPER_LANGUAGES,
    XTTS_LANGUAGES,
    base_language,
    char_limit,
    normalise_language,
)
from tts_contract.limits import (
    MAX_TEXT_CHARS,
    PITCH_RANGE,
    SPEED_RANGE,
    VOLUME_RANGE,
    XTTS_SPEED_RANGE,
    clamp,
    clamp_speed,
)
from tts_contract.sentences import complete_sentence, split_sentences, split_text
from tts_contract.tensors import MODELS, PIPER, XTTS, XTTS_CONDITION, ModelSpec, TensorSpec, new_request_id

__all__ = [
    "CHAR_LIMITS", "DEFAULT_CHAR_LIMIT", "LANGUAGES", "MAX_TEXT_CHARS", "MODELS", "NATIVE_RATES", "PIPER",
    "PIPER_LANGUAGES", "PIPER_SAMPLE_RATE", "PITCH_RANGE", "SPEED_RANGE", "VOLUME_RANGE", "XTTS", "XTTS_CONDITION",
    "XTTS_LANGUAGES", "XTTS_SAMPLE_RATE", "XTTS_SPEED_RANGE", "ModelSpec", "TensorSpec", "base_language",
    "char_limit", "clamp", "clamp_speed", "complete_sentence", "new_request_id", "normalise_language",
    "split_sentences", "split_text",
]
