"""Triton model `piper`: decoupled; streams one AUDIO response per sentence of TEXT, then the final flag."""

from __future__ import annotations

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils

from tts_engine.metrics import ModelMetrics
from tts_engine.piper import MAX_SPEED, MIN_SPEED, PiperEngine
from tts_engine.triton_utils import InputError, RequestInputs, cancellation_polling

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.poll_cancellation = cancellation_polling(json.loads(args["model_config"]))
        self.engine = PiperEngine.bundled()
        self.sample_rate = np.array([self.engine.sample_rate], dtype=np.int32)
        self.metrics = ModelMetrics(pb_utils, "piper", self.engine.info.version, test_weights=False)

    def execute(self, requests: list) -> None:
        # One request at a time per instance (max_batch_size 0, no batcher); instances run in parallel.
        for request in requests:
            self._serve(request)
        return None

    def _serve(self, request) -> None:
        arrived = time.perf_counter()
        sender = request.get_response_sender()
        self.metrics.active.increment(1)
        outcome = "ok"
        try:
            inputs = RequestInputs(lambda name: _as_numpy(request, name))
            text = inputs.text("TEXT")
            speed = inputs.scalar("SPEED", float, 1.0, low=MIN_SPEED, high=MAX_SPEED)
            first = True
            for audio in self.engine.synthesize_stream(text, speed):
                if self.poll_cancellation and sender.is_cancelled():
                    outcome = "cancelled"
                    break
                sender.send(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("AUDIO", audio),
                    pb_utils.Tensor("SAMPLE_RATE", self.sample_rate),
                ]))
                if first:
                    self.metrics.first_chunk.observe(time.perf_counter() - arrived)
                    first = False
                self.metrics.audio_seconds.increment(audio.size / self.engine.sample_rate)
            sender.send(flags=FINAL)
        except (InputError, ValueError) as error:
            outcome = "error"
            _fail(sender, f"piper: {error}")
        except Exception as error:  # keep the instance serving; exception text may quote the input: type only
            outcome = "error"
            pb_utils.Logger.log_error(f"piper: synthesis failed: {type(error).__name__}")
            _fail(sender, f"piper: synthesis failed ({type(error).__name__})")
        finally:
            self.metrics.active.increment(-1)
            self.metrics.finished(outcome)

    def finalize(self) -> None:
        self.engine = None


def _fail(sender, message: str) -> None:
    sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(message)), flags=FINAL)


def _as_numpy(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
