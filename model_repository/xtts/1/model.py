"""Triton model `xtts`: decoupled XTTS-v2 streaming over the continuous-batching engine.

`execute` validates and submits each request and returns at once; one thread per request relays
the engine stream's chunks through the response sender.

Cancelling: a request carrying only CANCEL_REQUEST_ID stops the running request with that id (the
id the client gave it), whichever instance runs it, and frees its decode row before the next decode
step; the stopped stream ends with its final flag and the cancel request gets an empty final
response. Polling the response sender's is_cancelled() is opt-in (`poll_cancellation`, see
tts_engine.triton_utils.cancellation_polling).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils

from tts_engine.metrics import EngineStatsExporter, ModelMetrics, PendingMetrics
from tts_engine.triton_utils import (
    CancelBoard,
    InputError,
    RequestInputs,
    cancellation_polling,
    instance_device,
    model_parameter,
    xtts_model_path,
    xtts_params,
)
from tts_engine.xtts.prefix_cache import CACHE_VOICES_ENV, DEFAULT_VOICES
from tts_engine.xtts.stats import BATCH_BUCKETS
from tts_engine.xtts.types import SAMPLE_RATE

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
POLL_S = 0.05  # how often a waiting relay thread checks for cancellation
STATS_INTERVAL_S = 1.0


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        import os

        from tts_engine.xtts.engine import XttsEngine

        config = json.loads(args["model_config"])
        path = xtts_model_path()
        max_batch = int(os.environ.get("XTTS_MAX_BATCH_SIZE") or model_parameter(config, "max_batch_size", "32"))
        prefix_voices = int(os.environ.get(CACHE_VOICES_ENV) or model_parameter(
            config, "prefix_cache_voices", str(DEFAULT_VOICES)))
        vocoder_threads = int(os.environ.get("XTTS_VOCODER_THREADS") or model_parameter(
            config, "vocoder_threads", "1"))
        self.chunk_timeout_s = float(os.environ.get("XTTS_CHUNK_TIMEOUT_S") or model_parameter(
            config, "chunk_timeout_s", "120"))
        self.poll_cancellation = cancellation_polling(config)
        try:
            self.engine = XttsEngine.from_artifact(
                path, device=instance_device(args), max_batch_size=max_batch, prefix_cache_voices=prefix_voices,
                vocoder_threads=vocoder_threads,
            )
        except Exception as error:
            raise RuntimeError(f"xtts: cannot load the artifact at XTTS_MODEL_PATH={path}: {error}") from error
        self.engine.start()
        manifest = self.engine.manifest
        self.metrics = ModelMetrics(pb_utils, "xtts", manifest["model_version"], bool(manifest.get("test_weights")))
        self.exporter = EngineStatsExporter(self.metrics, list(BATCH_BUCKETS))
        self.pending = PendingMetrics()  # request-path updates; the stats thread applies them
        self.sample_rate = np.array([SAMPLE_RATE], dtype=np.int32)
        self._closing = threading.Event()
        self._relays: set[threading.Thread] = set()
        self._relays_lock = threading.Lock()
        self.cancels = CancelBoard("xtts")
        self._stats_thread = threading.Thread(target=self._export_stats, name="xtts-stats", daemon=True)
        self._stats_thread.start()

    def execute(self, requests: list) -> None:
        for request in requests:
            arrived = time.perf_counter()
            sender = request.get_response_sender()
            inputs = RequestInputs(lambda name, r=request: _as_numpy(r, name))
            try:
                cancel_id = inputs.text("CANCEL_REQUEST_ID", required=False)
            except InputError as error:
                _fail(sender, f"xtts: {error}")
                continue
            if cancel_id:
                self.cancels.request(cancel_id)  # whichever instance runs it sees this before its next chunk
                sender.send(flags=FINAL)
                continue
            try:
                stream = self.engine.submit(
                    inputs.text("TEXT"),
                    inputs.text("LANGUAGE"),
                    inputs.floats("GPT_COND_LATENT", (None, None)),
                    inputs.floats("SPEAKER_EMBEDDING", (None,)),
                    xtts_params(inputs),
                )
            except (InputError, ValueError) as error:
                self.pending.finished("error", was_active=False)
                _fail(sender, f"xtts: {error}")
                continue
            except Exception as error:  # engine not running, out of memory...: this request only
                self.pending.finished("error", was_active=False)
                _fail(sender, f"xtts: cannot start synthesis ({type(error).__name__})")
                continue
            request_id = request.request_id()
            relay = threading.Thread(target=self._relay, args=(stream, sender, arrived, request_id), name="xtts-relay",
                                     daemon=True)
            with self._relays_lock:
                self._relays.add(relay)
            relay.start()
        return None

    def _relay(self, stream, sender, arrived: float, request_id: str) -> None:
        self.pending.started()
        stream.timeout = POLL_S  # next() returns every POLL_S so cancellation is seen while waiting
        outcome = "ok"
        last = time.monotonic()
        first = True
        try:
            while True:
                if self.cancels.is_requested(request_id) or (self.poll_cancellation and sender.is_cancelled()):
                    stream.cancel()  # the engine frees the row before its next decode step
                    outcome = "cancelled"
                    break
                try:
                    chunk = next(stream)
                except StopIteration:
                    break
                except TimeoutError:
                    if time.monotonic() - last > self.chunk_timeout_s:
                        stream.cancel()
                        raise TimeoutError(f"no audio for {self.chunk_timeout_s:.0f} s") from None
                    continue
                last = time.monotonic()
                audio = np.ascontiguousarray(chunk.audio, dtype=np.float32).reshape(-1)
                sender.send(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("AUDIO", audio),
                    pb_utils.Tensor("SAMPLE_RATE", self.sample_rate),
                ]))
                if first:
                    self.pending.first_chunk(time.perf_counter() - arrived)
                    first = False
                self.pending.audio(audio.size / SAMPLE_RATE)
            with contextlib.suppress(Exception) if outcome == "cancelled" else contextlib.nullcontext():
                sender.send(flags=FINAL)  # after a cancel the client may be gone; closing may then fail
        except Exception as error:  # noqa: BLE001 - one failed request must not stop the instance
            outcome = "error"
            pb_utils.Logger.log_warn(f"xtts: request failed: {type(error).__name__}")
            with contextlib.suppress(Exception):  # already closed
                _fail(sender, f"xtts: synthesis failed: {error}")
        finally:
            self.pending.finished(outcome)
            if request_id:
                self.cancels.clear(request_id)
            with self._relays_lock:
                self._relays.discard(threading.current_thread())

    def _export_stats(self) -> None:
        while not self._closing.wait(STATS_INTERVAL_S):
            try:
                self.cancels.sweep()
                self.pending.flush(self.metrics)
                self.exporter.update(self.engine.stats.snapshot())
            except Exception as error:  # noqa: BLE001 - metrics must never take the model down
                pb_utils.Logger.log_warn(f"xtts: metrics export failed: {type(error).__name__}: {error}")

    def finalize(self) -> None:
        pb_utils.Logger.log_info("xtts: stopping the engine")
        self._closing.set()
        self.engine.stop()  # running and queued requests end with an error response
        with self._relays_lock:
            relays = list(self._relays)
        for relay in relays:
            relay.join(timeout=5)
        self._stats_thread.join(timeout=5)
        pb_utils.Logger.log_info(f"xtts: engine stopped ({sum(r.is_alive() for r in relays)} relays still running)")


def _fail(sender, message: str) -> None:
    sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(message)), flags=FINAL)


def _as_numpy(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
