"""Triton model `piper`: decoupled; streams one AUDIO response per sentence of TEXT, then the final flag.

`execute` hands each request to this instance's worker threads and returns, so the instance is
always free to take the next request, including a cancel request (CANCEL_REQUEST_ID only), which
stops the running request with that id before its next sentence, whichever instance runs it.
"""

from __future__ import annotations

import json

import triton_python_backend_utils as pb_utils

from tts_contract import tensors as T
from tts_engine.metrics import ModelMetrics
from tts_engine.piper import MAX_SPEED, MIN_SPEED, PiperEngine
from tts_engine.triton_utils import DecoupledModel, IteratorSource, RequestInputs, model_parameter


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.engine = PiperEngine.bundled()
        metrics = ModelMetrics(pb_utils, "piper", self.engine.info.version, test_weights=False)
        self.server = DecoupledModel(pb_utils, "piper", config, sample_rate=self.engine.sample_rate, metrics=metrics,
                                     workers=int(model_parameter(config, "workers_per_instance", "2")))
        self.server.start_housekeeping()

    def execute(self, requests: list) -> None:
        self.server.execute(requests, self._start)

    def _start(self, inputs: RequestInputs) -> IteratorSource:
        text = inputs.text(T.TEXT)
        speed = inputs.scalar(T.SPEED, float, 1.0, low=MIN_SPEED, high=MAX_SPEED)
        return IteratorSource(self.engine.synthesize_stream(text, speed))  # validates before any work

    def finalize(self) -> None:
        self.server.close()
