"""Reading Triton request tensors as validated Python values (no Triton import here).

Model files pass a getter `name -> np.ndarray | None` (the request's tensor `as_numpy()`, or None
when an optional input is absent), so this module runs and is testable outside the Python stub.
Every problem raises InputError (a ValueError) whose message names the input.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np

from tts_contract import tensors as T

if TYPE_CHECKING:
    from tts_engine.xtts.types import SynthesisParams

TensorGetter = Callable[[str], "np.ndarray | None"]
N = TypeVar("N", int, float, bool)


class InputError(ValueError):
    """A request input is missing, malformed or out of range."""


class RequestInputs:
    """Typed access to one request's inputs."""

    def __init__(self, get: TensorGetter):
        self._get = get

    def _array(self, name: str, required: bool) -> np.ndarray | None:
        value = self._get(name)
        if value is None and required:
            raise InputError(f"input {name} is required")
        return value

    def text(self, name: str, required: bool = True, default: str = "") -> str:
        """A TYPE_STRING [1] input decoded as UTF-8."""
        array = self._array(name, required)
        if array is None:
            return default
        if array.size != 1:
            raise InputError(f"input {name} must hold exactly one string, got {array.size}")
        value = array.reshape(-1)[0]
        if isinstance(value, bytes | bytearray | np.bytes_):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(f"input {name} is not valid UTF-8") from error
        return str(value)

    @overload
    def scalar(self, name: str, kind: type[N], default: N, *, low: float | None = None,
               high: float | None = None) -> N: ...

    @overload
    def scalar(self, name: str, kind: type[N], default: None = None, *, low: float | None = None,
               high: float | None = None) -> N | None: ...

    def scalar(self, name: str, kind: type[N], default: N | None = None, *, low: float | None = None,
               high: float | None = None) -> N | None:
        """An optional one-element input converted to `kind` (float, int or bool), range-checked."""
        array = self._array(name, required=False)
        if array is None:
            return default
        if array.size != 1:
            raise InputError(f"input {name} must hold exactly one value, got {array.size}")
        raw = array.reshape(-1)[0]
        value: Any
        if kind is bool:
            return kind(bool(raw))
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise InputError(f"input {name} must be finite, got {value}")
        else:
            value = int(raw)
        if (low is not None and value < low) or (high is not None and value > high):
            raise InputError(f"input {name} must be in [{low}, {high}], got {value}")
        return kind(value)

    def floats(self, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """A required float32 tensor whose shape matches `shape` (None = any size), finite everywhere."""
        array = np.asarray(self._array(name, required=True), dtype=np.float32)
        if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape,
                                                                                               strict=True)):
            wanted = "x".join("N" if want is None else str(want) for want in shape)
            raise InputError(f"input {name} must have shape [{wanted}], got {list(array.shape)}")
        if not np.all(np.isfinite(array)):
            raise InputError(f"input {name} contains NaN or infinite values")
        return array


def model_parameter(model_config: dict[str, Any], key: str, default: str) -> str:
    """A `parameters { key: ... value: { string_value: ... } }` entry of config.pbtxt (as JSON)."""
    entry = (model_config.get("parameters") or {}).get(key) or {}
    value = str(entry.get("string_value", "")).strip()
    return value or default


def instance_device(args: dict[str, Any]) -> str:
    """The torch device of a model instance from TritonPythonModel.initialize's args."""
    if str(args.get("model_instance_kind", "CPU")).upper() == "GPU":
        return f"cuda:{int(args.get('model_instance_device_id', 0))}"
    return "cpu"


def xtts_model_path() -> str:
    """XTTS_MODEL_PATH from the server's environment; a clear error when it is unset or not a folder."""
    path = os.environ.get("XTTS_MODEL_PATH", "").strip()
    if not path:
        raise RuntimeError("XTTS_MODEL_PATH is not set: point it at an exported XTTS artifact "
                           "(tts-gateway export xtts ...) in Triton's environment")
    if not os.path.isdir(path):
        raise RuntimeError(f"XTTS_MODEL_PATH={path} is not a folder (expected an exported XTTS artifact)")
    return path


# SynthesisParams field -> the xtts model's input tensor.
PARAM_INPUTS: dict[str, str] = {
    "temperature": T.TEMPERATURE, "top_k": T.TOP_K, "top_p": T.TOP_P, "repetition_penalty": T.REPETITION_PENALTY,
    "speed": T.SPEED, "seed": T.SEED, "do_sample": T.DO_SAMPLE, "max_new_tokens": T.MAX_NEW_TOKENS,
    "first_chunk_tokens": T.FIRST_CHUNK_TOKENS,
}
PARAM_FIELDS = set(PARAM_INPUTS)


def xtts_params(inputs: RequestInputs) -> SynthesisParams:
    """SynthesisParams from the xtts model's optional inputs; validated (ValueError names the input)."""
    from tts_engine.xtts.types import SynthesisParams

    defaults = SynthesisParams()
    params = SynthesisParams(
        temperature=inputs.scalar(T.TEMPERATURE, float, defaults.temperature),
        top_k=inputs.scalar(T.TOP_K, int, defaults.top_k),
        top_p=inputs.scalar(T.TOP_P, float, defaults.top_p),
        repetition_penalty=inputs.scalar(T.REPETITION_PENALTY, float, defaults.repetition_penalty),
        speed=inputs.scalar(T.SPEED, float, defaults.speed),
        seed=inputs.scalar(T.SEED, int, defaults.seed),
        do_sample=inputs.scalar(T.DO_SAMPLE, bool, defaults.do_sample),
        max_new_tokens=inputs.scalar(T.MAX_NEW_TOKENS, int, defaults.max_new_tokens),
        first_chunk_tokens=inputs.scalar(T.FIRST_CHUNK_TOKENS, int, defaults.first_chunk_tokens),
    )
    try:
        params.validate()
    except ValueError as error:
        field, _, rest = str(error).partition(" ")
        raise InputError(f"{PARAM_INPUTS[field]} {rest}" if field in PARAM_INPUTS else str(error)) from None
    return params
