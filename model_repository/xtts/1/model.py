"""Triton model `xtts`: decoupled XTTS-v2 streaming over the continuous-batching engine.

`execute` validates and submits each request and returns at once (requests waiting for a decode
row join it in weighted fair order by tenant: the `tenant` and `weight` request parameters,
tts_contract.fairness); one thread per request relays the engine stream's chunks through the
response sender (tts_engine.triton_utils.DecoupledModel).

Cancelling: a request carrying only CANCEL_REQUEST_ID stops the running request with that id (the
id the client gave it), whichever instance runs it, and frees its decode row before the next decode
step; the stopped stream ends with its final flag and the cancel request gets an empty final
response. Polling the response sender's is_cancelled() is opt-in (`poll_cancellation`, see
tts_engine.triton_utils.cancellation_polling).
"""

from __future__ import annotations

import json
import os

import triton_python_backend_utils as pb_utils

from tts_contract import tensors as T
from tts_contract.audio import XTTS_SAMPLE_RATE
from tts_contract.fairness import Share
from tts_engine.metrics import EngineStatsExporter, ModelMetrics
from tts_engine.triton_utils import (
    DecoupledModel,
    PolledStream,
    RequestInputs,
    instance_device,
    model_parameter,
    xtts_model_path,
    xtts_params,
)
from tts_engine.xtts.prefix_cache import CACHE_VOICES_ENV, DEFAULT_VOICES
from tts_engine.xtts.stats import BATCH_BUCKETS
from tts_engine.xtts.types import EngineError
from tts_engine.xtts.vocode_worker import parse_vocode_batch

POLL_S = 0.05  # how often a waiting relay thread checks for cancellation


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        from tts_engine.xtts.engine import XttsEngine

        config = json.loads(args["model_config"])
        path = xtts_model_path()
        # Environment variables override the config's parameters.
        max_batch = int(os.environ.get("XTTS_MAX_BATCH_SIZE") or model_parameter(config, "max_batch_size", "32"))
        prefix_voices = int(os.environ.get(CACHE_VOICES_ENV) or model_parameter(
            config, "prefix_cache_voices", str(DEFAULT_VOICES)))
        vocoder_threads = int(os.environ.get("XTTS_VOCODER_THREADS") or model_parameter(
            config, "vocoder_threads", "1"))
        vocode_batch = parse_vocode_batch(os.environ.get("XTTS_VOCODE_BATCH") or model_parameter(
            config, "vocode_batch", "auto"))  # auto: batched on a GPU, one window at a time on a CPU
        self.chunk_timeout_s = float(os.environ.get("XTTS_CHUNK_TIMEOUT_S") or model_parameter(
            config, "chunk_timeout_s", "120"))
        try:
            self.engine = XttsEngine.from_artifact(
                path, device=instance_device(args), max_batch_size=max_batch, prefix_cache_voices=prefix_voices,
                vocoder_threads=vocoder_threads, vocode_batch=vocode_batch,
            )
        except Exception as error:
            raise RuntimeError(f"xtts: cannot load the artifact at XTTS_MODEL_PATH={path}: {error}") from error
        self.engine.start()
        manifest = self.engine.manifest
        metrics = ModelMetrics(pb_utils, "xtts", manifest["model_version"], bool(manifest.get("test_weights")))
        self.server = DecoupledModel(pb_utils, "xtts", config, sample_rate=XTTS_SAMPLE_RATE, metrics=metrics,
                                     safe_errors=(EngineError, TimeoutError))
        self.engine.on_queue_wait = self.server.pending.queue_wait
        exporter = EngineStatsExporter(metrics, list(BATCH_BUCKETS))
        self.server.start_housekeeping(lambda: exporter.update(self.engine.stats.snapshot()))

    def execute(self, requests: list) -> None:
        self.server.execute(requests, self._start)

    def _start(self, inputs: RequestInputs, share: Share) -> PolledStream:
        # `share`: the request's tenant and weight; the engine's fair queue orders waiting requests by it.
        stream = self.engine.submit(
            inputs.text(T.TEXT),
            inputs.text(T.LANGUAGE),
            inputs.floats(T.GPT_COND_LATENT, (None, None)),
            inputs.floats(T.SPEAKER_EMBEDDING, (None,)),
            xtts_params(inputs),
            share=share,
        )
        return PolledStream(stream, POLL_S, self.chunk_timeout_s)  # polled: a cancel is seen while waiting

    def finalize(self) -> None:
        pb_utils.Logger.log_info("xtts: stopping the engine")
        self.engine.stop()  # running and queued requests end with an error response
        still_running = self.server.close()
        pb_utils.Logger.log_info(f"xtts: engine stopped ({still_running} relays still running)")
