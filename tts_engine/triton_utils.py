"""What every Triton Python model here shares, with no Triton import (`pb_utils` is handed in).

- Request inputs as validated values (tts_engine.triton_inputs, re-exported here).
- Cancelling: the cancel board shared by a server's instances, and the cancel request convention
  of tts_contract.tensors (a request holding only CANCEL_REQUEST_ID stops the request with that id).
- `DecoupledModel`: the execute/relay loop of a decoupled streaming model. The model says how a
  request becomes an `AudioSource`; this does the rest (cancel requests, errors as one final error
  response, relaying chunks with the final flag, cancellation between chunks, request metrics).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import numpy as np

from tts_contract import tensors as T
from tts_contract.fairness import Share
from tts_engine.fair_workers import FairWorkers
from tts_engine.metrics import ModelMetrics, PendingMetrics
from tts_engine.triton_inputs import (
    PARAM_FIELDS,
    InputError,
    RequestInputs,
    TensorGetter,
    instance_device,
    model_parameter,
    xtts_model_path,
    xtts_params,
)

__all__ = [
    "PARAM_FIELDS", "AudioSource", "CancelBoard", "Chunk", "DecoupledModel", "InputError", "IteratorSource",
    "PolledStream",
    "RequestInputs", "TensorGetter", "cancellation_polling", "input_getter", "instance_device", "model_parameter",
    "request_share", "xtts_model_path", "xtts_params",
]

HOUSEKEEPING_INTERVAL_S = 1.0


def cancellation_polling(model_config: dict[str, Any]) -> bool:
    """Whether a model may poll `response_sender.is_cancelled()` (parameter `poll_cancellation`).

    Off by default: on Triton 2.51 (NGC 24.10, the nvidia-pytriton 0.7.0 server) calling
    is_cancelled() for a request whose gRPC stream the client has cancelled corrupts the server,
    which then crashes (SIGSEGV) on a later request. TRITON_POLL_CANCELLATION=1|0 overrides the
    model parameter, so newer servers can turn it on without a config change.
    """
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
        base = root or os.path.join(tempfile.gettempdir(), f"tts-cancel-{os.getppid()}")
        self.folder = os.path.join(base, model)
        os.makedirs(self.folder, exist_ok=True)

    def _path(self, request_id: str) -> str:
        # Request ids come from clients: hash them into safe, fixed-length file names.
        return os.path.join(self.folder, hashlib.sha256(request_id.encode()).hexdigest()[:32])

    def request(self, request_id: str) -> None:
        with open(self._path(request_id), "w"):
            pass

    def is_requested(self, request_id: str) -> bool:
        return bool(request_id) and os.path.exists(self._path(request_id))

    def clear(self, request_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(request_id))

    def sweep(self, max_age_s: float = 600.0) -> None:
        """Drop markers nobody consumed (cancels for requests that had already finished)."""
        now = time.time()
        with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if now - entry.stat().st_mtime > max_age_s:
                        os.unlink(entry.path)


class Chunk(NamedTuple):
    """Audio plus outputs of the model's own that travel in the same response (e.g. piper's WORDS)."""

    audio: np.ndarray
    extra: dict[str, np.ndarray]


SourceItem = np.ndarray | Chunk | None


class AudioSource(Protocol):
    """One request's audio: iterating yields mono float32 chunks (or `Chunk`s), or None when nothing
    is ready yet (a chance to see a cancel while waiting); `cancel()` stops the work behind it."""

    def __iter__(self) -> Iterator[SourceItem]: ...

    def cancel(self) -> None: ...


class IteratorSource:
    """A blocking iterator of chunks (one per sentence, say) as an AudioSource; `cost` is what it
    weighs in the workers' fair queue (the text's characters)."""

    def __init__(self, chunks: Iterator[np.ndarray] | Iterator[Chunk], cost: float = 1.0):
        self._chunks = chunks
        self.cost = cost

    def __iter__(self) -> Iterator[SourceItem]:
        return iter(self._chunks)

    def cancel(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class _EngineStream(Protocol):
    timeout: float

    def __next__(self) -> Any: ...  # an object with `.audio`; raises TimeoutError after `timeout` s

    def cancel(self) -> None: ...


class PolledStream:
    """An engine stream read every `poll_s` seconds; fails when no chunk comes for `chunk_timeout_s`."""

    def __init__(self, stream: _EngineStream, poll_s: float, chunk_timeout_s: float):
        self._stream = stream
        self._poll_s = poll_s
        self._chunk_timeout_s = chunk_timeout_s

    def __iter__(self) -> Iterator[SourceItem]:
        self._stream.timeout = self._poll_s
        last = time.monotonic()
        while True:
            try:
                chunk = next(self._stream)
            except StopIteration:
                return
            except TimeoutError:
                if time.monotonic() - last > self._chunk_timeout_s:
                    self._stream.cancel()
                    raise TimeoutError(f"no audio for {self._chunk_timeout_s:.0f} s") from None
                yield None
                continue
            last = time.monotonic()
            yield chunk.audio

    def cancel(self) -> None:
        self._stream.cancel()


def input_getter(pb_utils: Any, request: Any) -> TensorGetter:
    """A request's tensors as numpy arrays (None for an absent optional input)."""

    def get(name: str) -> np.ndarray | None:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        return None if tensor is None else tensor.as_numpy()

    return get


def request_share(request: Any) -> Share:
    """The tenant and weight a request carries as Triton request parameters (`request.parameters()`
    is a JSON object); a request without them, or with unreadable ones, gets the default share."""
    try:
        params = json.loads(request.parameters() or "{}")
    except (AttributeError, TypeError, ValueError):
        params = {}
    return Share.from_parameters(params if isinstance(params, dict) else None)


StartStream = Callable[[RequestInputs, Share], AudioSource]


class DecoupledModel:
    """The shared half of a decoupled streaming model: `execute()` and the per-request relay.

    `start(inputs, share)` validates a request and returns its AudioSource (raising ValueError for
    bad input, before any work); `share` is the request's tenant and weight (`request_share`).
    Each source is relayed on its own thread (`workers=None`: the engine does the work, queues it
    fairly itself, and the thread mostly waits) or on a pool of `workers` threads (the source's
    iteration is the work) that takes waiting requests in weighted fair order by share, with
    `express_workers` more for tenants within their share and the `workers` at nice + `background_nice`
    (tts_engine.fair_workers). `safe_errors` are exception types whose text may reach the client;
    other failures are reported by type only (their text could quote the request).
    """

    def __init__(self, pb_utils: Any, model: str, model_config: dict[str, Any], *, sample_rate: int,
                 metrics: ModelMetrics, workers: int | None = None, express_workers: int = 0,
                 background_nice: int = 0, safe_errors: tuple[type[BaseException], ...] = ()):
        self.pb = pb_utils
        self.model = model
        self.final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        self.poll_cancellation = cancellation_polling(model_config)
        self.cancels = CancelBoard(model)
        self.metrics = metrics
        self.pending = PendingMetrics()  # request-path updates; the housekeeping thread applies them
        self.rate = sample_rate
        self._rate_tensor = np.array([sample_rate], dtype=np.int32)
        self._safe_errors = safe_errors
        self._pool = FairWorkers(workers, name=model, on_wait=self.pending.queue_wait, express=express_workers,
                                 background_nice=background_nice) if workers else None
        self._relays: set[threading.Thread] = set()
        self._relays_lock = threading.Lock()
        self._closing = threading.Event()
        self._housekeeping: threading.Thread | None = None

    # -- execute ---------------------------------------------------------------------------

    def execute(self, requests: list[Any], start: StartStream) -> None:
        """Answer cancel requests, start the others; every request ends with exactly one final response."""
        for request in requests:
            arrived = time.perf_counter()
            sender = request.get_response_sender()
            inputs = RequestInputs(input_getter(self.pb, request))
            try:
                cancel_id = inputs.text(T.CANCEL_REQUEST_ID, required=False)
                if cancel_id:
                    if self._pool is None or not self._pool.cancel(cancel_id):  # still waiting here: withdrawn
                        self.cancels.request(cancel_id)  # whichever instance runs it sees this before its next chunk
                    sender.send(flags=self.final)
                    continue
                share = request_share(request)
                source = start(inputs, share)
            except ValueError as error:  # InputError included
                self.pending.finished("error", was_active=False)
                self.fail(sender, f"{self.model}: {error}")
                continue
            except Exception as error:  # noqa: BLE001 - engine not running, out of memory...: this request only
                self.pending.finished("error", was_active=False)
                self.fail(sender, f"{self.model}: cannot start synthesis ({type(error).__name__})")
                continue
            self._submit(source, sender, arrived, request.request_id(), share)

    def fail(self, sender: Any, message: str) -> None:
        """End a request with one error response carrying the final flag."""
        sender.send(self.pb.InferenceResponse(error=self.pb.TritonError(message)), flags=self.final)

    def _submit(self, source: AudioSource, sender: Any, arrived: float, request_id: str, share: Share) -> None:
        if self._pool is not None:
            self._pool.submit(functools.partial(self.relay, source, sender, arrived, request_id), share,
                              cost=float(getattr(source, "cost", 1.0)), key=request_id,
                              withdrawn=functools.partial(self._withdrawn, source, sender, request_id))
            return
        thread = threading.Thread(target=self._run_relay, args=(source, sender, arrived, request_id),
                                  name=f"{self.model}-relay", daemon=True)
        with self._relays_lock:
            self._relays.add(thread)
        thread.start()

    def _run_relay(self, source: AudioSource, sender: Any, arrived: float, request_id: str) -> None:
        try:
            self.relay(source, sender, arrived, request_id)
        finally:
            with self._relays_lock:
                self._relays.discard(threading.current_thread())

    def _withdrawn(self, source: AudioSource, sender: Any, request_id: str) -> None:
        """A request cancelled while it waited for a worker: end its stream, no work done."""
        with contextlib.suppress(Exception):
            source.cancel()
        with contextlib.suppress(Exception):  # the client may be gone
            sender.send(flags=self.final)
        self.pending.finished("cancelled", was_active=False)
        self.cancels.clear(request_id)

    # -- relay -----------------------------------------------------------------------------

    def _cancel_requested(self, request_id: str, sender: Any) -> bool:
        return self.cancels.is_requested(request_id) or (self.poll_cancellation and sender.is_cancelled())

    def relay(self, source: AudioSource, sender: Any, arrived: float, request_id: str) -> None:
        """Send each chunk as one response, then the final flag; a cancel or failure ends it early."""
        self.pending.started()
        outcome = "ok"
        first = True
        try:
            if self._cancel_requested(request_id, sender):  # cancelled on another instance while it waited
                source.cancel()
                outcome = "cancelled"
            for item in () if outcome == "cancelled" else source:
                if self._cancel_requested(request_id, sender):
                    source.cancel()  # xtts frees the decode row before its next step
                    outcome = "cancelled"
                    break
                if item is None:
                    continue
                raw, extra = (item.audio, item.extra) if isinstance(item, Chunk) else (item, {})
                audio = np.ascontiguousarray(raw, dtype=np.float32).reshape(-1)
                sender.send(self.pb.InferenceResponse(output_tensors=[
                    self.pb.Tensor(T.AUDIO, audio),
                    self.pb.Tensor(T.SAMPLE_RATE, self._rate_tensor),
                    *(self.pb.Tensor(name, value) for name, value in extra.items()),
                ]))
                if first:
                    self.pending.first_chunk(time.perf_counter() - arrived)
                    first = False
                self.pending.audio(audio.size / self.rate)
            with contextlib.suppress(Exception) if outcome == "cancelled" else contextlib.nullcontext():
                sender.send(flags=self.final)  # after a cancel the client may be gone; closing may then fail
        except Exception as error:  # noqa: BLE001 - one failed request must not stop the instance
            outcome = "error"
            self.pb.Logger.log_warn(f"{self.model}: request failed: {type(error).__name__}")
            detail = f": {error}" if isinstance(error, self._safe_errors) else f" ({type(error).__name__})"
            with contextlib.suppress(Exception):  # already closed
                self.fail(sender, f"{self.model}: synthesis failed{detail}")
        finally:
            self.pending.finished(outcome)
            if request_id:
                self.cancels.clear(request_id)

    # -- housekeeping and shutdown ---------------------------------------------------------

    def start_housekeeping(self, extra: Callable[[], None] | None = None) -> None:
        """Once a second: drop stale cancel markers, apply buffered metrics, then `extra()`."""

        def loop() -> None:
            while not self._closing.wait(HOUSEKEEPING_INTERVAL_S):
                try:
                    self.cancels.sweep()
                    self.pending.flush(self.metrics)
                    if extra is not None:
                        extra()
                except Exception as error:  # noqa: BLE001 - metrics must never take the model down
                    self.pb.Logger.log_warn(f"{self.model}: metrics export failed: {type(error).__name__}")

        self._housekeeping = threading.Thread(target=loop, name=f"{self.model}-metrics", daemon=True)
        self._housekeeping.start()

    def close(self, timeout: float = 5.0) -> int:
        """Wait for running relays (stop the engine first so they end); returns how many are still running."""
        if self._pool is not None:
            self._pool.shutdown()
        self._closing.set()
        with self._relays_lock:
            relays = list(self._relays)
        for relay in relays:
            relay.join(timeout=timeout)
        if self._housekeeping is not None:
            self._housekeeping.join(timeout=timeout)
        return sum(relay.is_alive() for relay in relays)
