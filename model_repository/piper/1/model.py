"""Triton model `piper`: decoupled; streams one AUDIO response per sentence of TEXT, then the final flag.

`execute` hands each request to this instance's worker threads and returns, so the instance is
always free to take the next request, including a cancel request (CANCEL_REQUEST_ID only), which
stops the running request with that id before its next sentence, whichever instance runs it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import triton_python_backend_utils as pb_utils

from tts_engine.metrics import ModelMetrics, PendingMetrics
from tts_engine.piper import MAX_SPEED, MIN_SPEED, PiperEngine
from tts_engine.piper.words import words_tensor
from tts_engine.triton_utils import CancelBoard, InputError, RequestInputs, cancellation_polling, model_parameter

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
FLUSH_INTERVAL_S = 1.0


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.poll_cancellation = cancellation_polling(config)
        self.engine = PiperEngine.bundled()
        self.sample_rate = np.array([self.engine.sample_rate], dtype=np.int32)
        self.metrics = ModelMetrics(pb_utils, "piper", self.engine.info.version, test_weights=False)
        self.pending = PendingMetrics()
        self.cancels = CancelBoard("piper")
        workers = int(model_parameter(config, "workers_per_instance", "2"))
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="piper")
        self._closing = threading.Event()
        self._flusher = threading.Thread(target=self._flush, name="piper-metrics", daemon=True)
        self._flusher.start()

    def execute(self, requests: list) -> None:
        for request in requests:
            arrived = time.perf_counter()
            sender = request.get_response_sender()
            inputs = RequestInputs(lambda name, r=request: _as_numpy(r, name))
            try:
                cancel_id = inputs.text("CANCEL_REQUEST_ID", required=False)
                if cancel_id:
                    self.cancels.request(cancel_id)
                    sender.send(flags=FINAL)
                    continue
                text = inputs.text("TEXT")
                speed = inputs.scalar("SPEED", float, 1.0, low=MIN_SPEED, high=MAX_SPEED)
                stream = self.engine.synthesize_timed(text, speed)  # validates before any work
            except (InputError, ValueError) as error:
                self.pending.finished("error", was_active=False)
                _fail(sender, f"piper: {error}")
                continue
            self.pool.submit(self._serve, stream, sender, arrived, request.request_id())
        return None

    def _serve(self, stream, sender, arrived: float, request_id: str) -> None:
        self.pending.started()
        outcome = "ok"
        try:
            first = True
            for audio, words in stream:
                if self.cancels.is_requested(request_id) or (self.poll_cancellation and sender.is_cancelled()):
                    outcome = "cancelled"
                    break
                sender.send(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("AUDIO", audio),
                    pb_utils.Tensor("SAMPLE_RATE", self.sample_rate),
                    pb_utils.Tensor("WORDS", words_tensor(words)),
                ]))
                if first:
                    self.pending.first_chunk(time.perf_counter() - arrived)
                    first = False
                self.pending.audio(audio.size / self.engine.sample_rate)
            with contextlib.suppress(Exception) if outcome == "cancelled" else contextlib.nullcontext():
                sender.send(flags=FINAL)
        except Exception as error:  # noqa: BLE001 - keep serving; exception text may quote the input: type only
            outcome = "error"
            pb_utils.Logger.log_error(f"piper: synthesis failed: {type(error).__name__}")
            with contextlib.suppress(Exception):
                _fail(sender, f"piper: synthesis failed ({type(error).__name__})")
        finally:
            if request_id:
                self.cancels.clear(request_id)
            self.pending.finished(outcome)

    def _flush(self) -> None:
        while not self._closing.wait(FLUSH_INTERVAL_S):
            try:
                self.cancels.sweep()
                self.pending.flush(self.metrics)
            except Exception as error:  # noqa: BLE001 - metrics must never take the model down
                pb_utils.Logger.log_warn(f"piper: metrics export failed: {type(error).__name__}")

    def finalize(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        self._closing.set()
        self._flusher.join(timeout=5)
        self.engine = None


def _fail(sender, message: str) -> None:
    sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(message)), flags=FINAL)


def _as_numpy(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
