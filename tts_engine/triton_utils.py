"""Reading Triton request tensors as validated Python values (no Triton import here).

Model files pass a getter `name -> np.ndarray | None` (the request's tensor `as_numpy()`, or None
when an optional input is absent), so this module runs and is testable outside the Python stub.
Every problem raises InputError (a ValueError) whose message names the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

TensorGetter = Callable[[str], "np.ndarray | None"]


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

    def scalar(self, name: str, kind: type, default=None, *, low: float | None = None, high: float | None = None):
        """An optional one-element input converted to `kind` (float, int or bool), range-checked."""
        array = self._array(name, required=False)
        if array is None:
            return default
        if array.size != 1:
            raise InputError(f"input {name} must hold exactly one value, got {array.size}")
        raw = array.reshape(-1)[0]
        if kind is bool:
            return bool(raw)
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise InputError(f"input {name} must be finite, got {value}")
        else:
            value = int(raw)
        if (low is not None and value < low) or (high is not None and value > high):
            raise InputError(f"input {name} must be in [{low}, {high}], got {value}")
        return value

    def floats(self, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """A required float32 tensor whose shape matches `shape` (None = any size), finite everywhere."""
        array = self._array(name, required=True)
        array = np.asarray(array, dtype=np.float32)
        if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape,
                                                                                               strict=True)):
            wanted = "x".join("N" if want is None else str(want) for want in shape)
            raise InputError(f"input {name} must have shape [{wanted}], got {list(array.shape)}")
        if not np.all(np.isfinite(array)):
            raise InputError(f"input {name} contains NaN or infinite values")
        return array
