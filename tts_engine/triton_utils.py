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


def model_parameter(model_config: dict, key: str, default: str) -> str:
    """A `parameters { key: ... value: { string_value: ... } }` entry of config.pbtxt (as JSON)."""
    entry = (model_config.get("parameters") or {}).get(key) or {}
    value = str(entry.get("string_value", "")).strip()
    return value or default


def instance_device(args: dict) -> str:
    """The torch device of a model instance from TritonPythonModel.initialize's args."""
    if str(args.get("model_instance_kind", "CPU")).upper() == "GPU":
        return f"cuda:{int(args.get('model_instance_device_id', 0))}"
    return "cpu"


def xtts_model_path() -> str:
    """XTTS_MODEL_PATH from the server's environment; a clear error when it is unset or not a folder."""
    import os

    path = os.environ.get("XTTS_MODEL_PATH", "").strip()
    if not path:
        raise RuntimeError("XTTS_MODEL_PATH is not set: point it at an exported XTTS artifact "
                           "(tts-gateway export xtts ...) in Triton's environment")
    if not os.path.isdir(path):
        raise RuntimeError(f"XTTS_MODEL_PATH={path} is not a folder (expected an exported XTTS artifact)")
    return path


def xtts_params(inputs: RequestInputs):
    """SynthesisParams from the xtts model's optional inputs; validated (ValueError names the field)."""
    from tts_engine.xtts.types import SynthesisParams

    defaults = SynthesisParams()
    params = SynthesisParams(
        temperature=inputs.scalar("TEMPERATURE", float, defaults.temperature),
        top_k=inputs.scalar("TOP_K", int, defaults.top_k),
        top_p=inputs.scalar("TOP_P", float, defaults.top_p),
        repetition_penalty=inputs.scalar("REPETITION_PENALTY", float, defaults.repetition_penalty),
        speed=inputs.scalar("SPEED", float, defaults.speed),
        seed=inputs.scalar("SEED", int, defaults.seed),
        do_sample=inputs.scalar("DO_SAMPLE", bool, defaults.do_sample),
        max_new_tokens=inputs.scalar("MAX_NEW_TOKENS", int, defaults.max_new_tokens),
        first_chunk_tokens=inputs.scalar("FIRST_CHUNK_TOKENS", int, defaults.first_chunk_tokens),
    )
    try:
        params.validate()
    except ValueError as error:
        field, _, rest = str(error).partition(" ")
        raise InputError(f"{field.upper()} {rest}" if field in PARAM_FIELDS else str(error)) from None
    return params


PARAM_FIELDS = {"temperature", "top_k", "top_p", "repetition_penalty", "speed", "seed", "do_sample", "max_new_tokens",
                "first_chunk_tokens"}


def cancellation_polling(model_config: dict) -> bool:
    """Whether a model may poll `response_sender.is_cancelled()` (parameter `poll_cancellation`).

    Off by default: on Triton 2.51 (NGC 24.10, the nvidia-pytriton 0.7.0 server) calling
    is_cancelled() for a request whose gRPC stream the client has cancelled corrupts the server,
    which then crashes (SIGSEGV) on a later request. TRITON_POLL_CANCELLATION=1|0 overrides the
    model parameter, so newer servers can turn it on without a config change.
    """
    import os

    value = os.environ.get("TRITON_POLL_CANCELLATION", "").strip() or model_parameter(model_config, "poll_cancellation",
                                                                                       "false")
    return value.lower() in {"1", "true", "yes", "on"}


class CancelBoard:
    """Cancellation requests shared by every model instance of one Triton server, as marker files.

    A cancel request may land on any instance (several per model on multi-GPU or CPU pools), so the
    instance that receives it only writes a marker; the instance running the request checks for it
    between chunks. The folder is keyed by the server's process id (the stubs' parent), so two
    servers on one machine never see each other's markers.
    """

    def __init__(self, model: str, root: str | None = None):
        import os
        import tempfile

        base = root or os.path.join(tempfile.gettempdir(), f"tts-cancel-{os.getppid()}")
        self.folder = os.path.join(base, model)
        os.makedirs(self.folder, exist_ok=True)

    def _path(self, request_id: str) -> str:
        import hashlib
        import os

        # Request ids come from clients: hash them into safe, fixed-length file names.
        return os.path.join(self.folder, hashlib.sha256(request_id.encode()).hexdigest()[:32])

    def request(self, request_id: str) -> None:
        with open(self._path(request_id), "w"):
            pass

    def is_requested(self, request_id: str) -> bool:
        import os

        return bool(request_id) and os.path.exists(self._path(request_id))

    def clear(self, request_id: str) -> None:
        import contextlib
        import os

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(request_id))

    def sweep(self, max_age_s: float = 600.0) -> None:
        """Drop markers nobody consumed (cancels for requests that had already finished)."""
        import contextlib
        import os
        import time

        now = time.time()
        with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if now - entry.stat().st_mtime > max_age_s:
                        os.unlink(entry.path)
