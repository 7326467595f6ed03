"""Triton model `piper`: decoupled; streams one response per sentence of TEXT, then the final flag.

Each response carries the sentence's AUDIO, SAMPLE_RATE and WORDS (the input words it speaks, with
their sample spans). `execute` hands each request to this instance's worker threads and returns, so
the instance is always free to take the next request, including a cancel request
(CANCEL_REQUEST_ID only), which withdraws a waiting request or stops the running request with that
id before its next sentence, whichever instance runs it. Requests waiting for a worker are taken
in weighted fair order by tenant: the `tenant` and `weight` request parameters
(tts_contract.fairness), cost = characters; a tenant within its share runs on the express lane
(tts_engine.fair_workers; sizes and priorities: tts_engine.piper.pool).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import triton_python_backend_utils as pb_utils

from tts_contract import tensors as T
from tts_contract.fairness import Share
from tts_engine.metrics import ModelMetrics
from tts_engine.piper import MAX_SPEED, MIN_SPEED, PiperEngine, PiperPool
from tts_engine.piper.words import Word, words_tensor
from tts_engine.triton_utils import Chunk, DecoupledModel, IteratorSource, RequestInputs


def _with_words(timed: Iterator[tuple[np.ndarray, list[Word]]]) -> Iterator[Chunk]:
    for audio, words in timed:
        yield Chunk(audio, {T.WORDS: words_tensor(words)})


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        pool = PiperPool.from_config(config)
        self.engine = PiperEngine.bundled(op_threads=pool.op_threads)
        metrics = ModelMetrics(pb_utils, "piper", self.engine.info.version, test_weights=False)
        self.server = DecoupledModel(pb_utils, "piper", config, sample_rate=self.engine.sample_rate, metrics=metrics,
                                     workers=pool.workers, express_workers=pool.express_workers,
                                     background_nice=pool.background_nice)
        self.server.start_housekeeping()

    def execute(self, requests: list) -> None:
        self.server.execute(requests, self._start)

    def _start(self, inputs: RequestInputs, share: Share) -> IteratorSource:
        # `share` orders this request among the waiting ones (DecoupledModel's fair workers); cost: its characters.
        text = inputs.text(T.TEXT)
        speed = inputs.scalar(T.SPEED, float, 1.0, low=MIN_SPEED, high=MAX_SPEED)
        timed = self.engine.synthesize_timed(text, speed)  # validates before any work
        return IteratorSource(_with_words(timed), cost=len(text))

    def finalize(self) -> None:
        self.server.close()
