"""The Triton models' inputs and outputs, as both sides of the gRPC wire must spell them.

`config.pbtxt` in model_repository/ is what Triton reads; tests/contract checks it against these
specs, so a renamed tensor or a changed dtype breaks a test instead of a deployment.

Cancelling (decoupled models): every request carries a fresh request id (`new_request_id()`); a
request holding only `CANCEL_REQUEST_ID` = that id stops it, whichever model instance runs it, and
gets an empty final response. Ids are never reused, so a late cancel cannot hit a later request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# Tensor names (shared by several models where the meaning is the same).
TEXT = "TEXT"
LANGUAGE = "LANGUAGE"
GPT_COND_LATENT = "GPT_COND_LATENT"
SPEAKER_EMBEDDING = "SPEAKER_EMBEDDING"
TEMPERATURE = "TEMPERATURE"
TOP_K = "TOP_K"
TOP_P = "TOP_P"
REPETITION_PENALTY = "REPETITION_PENALTY"
SPEED = "SPEED"
SEED = "SEED"
DO_SAMPLE = "DO_SAMPLE"
MAX_NEW_TOKENS = "MAX_NEW_TOKENS"
FIRST_CHUNK_TOKENS = "FIRST_CHUNK_TOKENS"
CANCEL_REQUEST_ID = "CANCEL_REQUEST_ID"
AUDIO = "AUDIO"
SAMPLE_RATE = "SAMPLE_RATE"
WORDS = "WORDS"  # piper: JSON [[char_start, char_end, start_sample, end_sample], ...] per chunk

SPEAKER_EMBEDDING_DIM = 512  # values in a speaker embedding (XTTS-v2's speaker encoder)

# Triton wire dtype -> numpy dtype name (BYTES travels as an object array of bytes).
NUMPY_DTYPES: dict[str, str] = {"FP32": "float32", "INT32": "int32", "INT64": "int64", "BOOL": "bool",
                                "BYTES": "object"}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # Triton's wire name: FP32, INT32, INT64, BOOL, BYTES
    dims: tuple[int, ...]  # as in config.pbtxt (without the batch dimension); -1 is any size
    optional: bool = False

    @property
    def numpy_dtype(self) -> str:
        return NUMPY_DTYPES[self.dtype]

    @property
    def config_dtype(self) -> str:
        """The `data_type` of config.pbtxt (TYPE_STRING for BYTES)."""
        return "TYPE_STRING" if self.dtype == "BYTES" else f"TYPE_{self.dtype}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    decoupled: bool
    max_batch_size: int = 0

    def input(self, name: str) -> TensorSpec:
        return _find(self.inputs, name, self.name)

    def output(self, name: str) -> TensorSpec:
        return _find(self.outputs, name, self.name)


def _find(specs: tuple[TensorSpec, ...], name: str, model: str) -> TensorSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    raise KeyError(f"model {model} has no tensor {name}")


def _optional(name: str, dtype: str, dims: tuple[int, ...] = (1,)) -> TensorSpec:
    return TensorSpec(name, dtype, dims, optional=True)


_STREAM_OUTPUTS = (TensorSpec(AUDIO, "FP32", (-1,)), TensorSpec(SAMPLE_RATE, "INT32", (1,)))

# Decoupled models declare every input optional: a cancel request carries CANCEL_REQUEST_ID alone,
# and the model itself says which inputs a synthesis request must have.
XTTS = ModelSpec(
    name="xtts",
    inputs=(
        _optional(TEXT, "BYTES"),
        _optional(LANGUAGE, "BYTES"),
        _optional(GPT_COND_LATENT, "FP32", (-1, -1)),
        _optional(SPEAKER_EMBEDDING, "FP32", (-1,)),
        _optional(TEMPERATURE, "FP32"),
        _optional(TOP_K, "INT32"),
        _optional(TOP_P, "FP32"),
        _optional(REPETITION_PENALTY, "FP32"),
        _optional(SPEED, "FP32"),
        _optional(SEED, "INT64"),
        _optional(DO_SAMPLE, "BOOL"),
        _optional(MAX_NEW_TOKENS, "INT32"),
        _optional(FIRST_CHUNK_TOKENS, "INT32"),
        _optional(CANCEL_REQUEST_ID, "BYTES"),
    ),
    outputs=_STREAM_OUTPUTS,
    decoupled=True,
)

XTTS_CONDITION = ModelSpec(
    name="xtts_condition",
    inputs=(TensorSpec(AUDIO, "FP32", (-1,)), TensorSpec(SAMPLE_RATE, "INT32", (1,))),
    outputs=(TensorSpec(GPT_COND_LATENT, "FP32", (-1, -1)), TensorSpec(SPEAKER_EMBEDDING, "FP32", (-1,))),
    decoupled=False,
    max_batch_size=8,
)

PIPER = ModelSpec(
    name="piper",
    inputs=(_optional(TEXT, "BYTES"), _optional(SPEED, "FP32"), _optional(CANCEL_REQUEST_ID, "BYTES")),
    outputs=(*_STREAM_OUTPUTS, TensorSpec(WORDS, "BYTES", (1,))),
    decoupled=True,
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (XTTS, XTTS_CONDITION, PIPER)}


def new_request_id() -> str:
    """A fresh Triton request id: what a later cancel request names."""
    return uuid.uuid4().hex
