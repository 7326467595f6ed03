"""The XTTS serving engine: continuous-batching GPT decode plus windowed streaming vocoding.

One background thread owns the model and runs the loop; requests arrive from any thread through
`submit()` and stream back through `SynthesisStream`. Each loop iteration: drop stopped requests
(their rows free at once), admit waiting requests into free rows (in weighted fair order by
tenant, tts_engine.fair_queue), advance every active request by one audio token
(`DecodeBatcher.step`), then let `RequestOutputs` turn due latents into chunks (on the vocoder
thread, `VocodeWorker`, while the loop decodes on). A failure in one request's prefill or
vocoding fails that request only.

The pieces: `intake` (validation, tokenisation, the Job), `batcher` (rows, KV cache, sampling),
`output` (chunks, vocoding hand-off, ending streams), `stream` (what the caller reads), `offline`
(code generation without audio, for parity tests and benchmarks).

Tail handling: like both reference paths, one latent is vocoded per decode step, including the step
whose token was the stop token (Coqui's `inference` recomputes the latents with a parallel pass and
keeps `len(codes incl. stop)` of them via its `[:, :-5]` cut; `inference_stream` keeps the per-step
hidden states). The engine takes the per-step latents from its KV-cached pass (equal to the
recomputed ones up to float noise), for streaming and non-streaming alike.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tts_contract.fairness import Share
from tts_engine.fair_queue import FairQueue, Ticket
from tts_engine.xtts.batcher import DecodeBatcher, Job
from tts_engine.xtts.conditioning import compute_conditioning
from tts_engine.xtts.intake import RequestIntake
from tts_engine.xtts.offline import CodeRequest, CodeResult, generate_codes
from tts_engine.xtts.output import RequestOutputs, RequestState
from tts_engine.xtts.prefix_cache import DEFAULT_VOICES, PrefixCache
from tts_engine.xtts.stats import EngineStats
from tts_engine.xtts.stream import StopRequests, SynthesisStream
from tts_engine.xtts.types import EngineError, SynthesisParams
from tts_engine.xtts.vocode_worker import VocodeWorker, default_vocode_batch
from tts_engine.xtts.vocoding import FrameDecoder, WindowConfig, frame_decoder_for

__all__ = ["CodeRequest", "CodeResult", "SynthesisStream", "XttsEngine", "resolve_device"]  # earlier import paths

logger = logging.getLogger(__name__)


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class XttsEngine:
    """Continuous-batching XTTS-v2 synthesis over a loaded Coqui `Xtts` model."""

    manifest: dict[str, Any]  # set by from_artifact

    def __init__(
        self,
        model: Any,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        max_batch_size: int = 32,
        vocoder: Any = None,
        window: WindowConfig | None = None,
        max_cond_tokens: int | None = None,
        stream_timeout: float = 120.0,
        prefix_cache_voices: int = DEFAULT_VOICES,
        pipeline_vocoding: bool = True,
        vocoder_threads: int = 1,
        vocode_batch: int | None = None,
    ):
        self.device = resolve_device(device)
        if dtype is None:
            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        if self.device.type == "cpu" and dtype != torch.float32:
            raise ValueError("the CPU path runs in float32")
        if not 1 <= max_batch_size <= 1024:
            raise ValueError("max_batch_size must be in [1, 1024]")
        if vocode_batch is None:  # windows per HiFi-GAN call: batched on a GPU, one at a time on a CPU
            vocode_batch = default_vocode_batch(self.device)
        if vocode_batch < 1:
            raise ValueError("vocode_batch must be >= 1")
        model.eval()  # Xtts.eval() returns None
        model.to(self.device)
        self.model = model
        self.dtype = dtype
        gpt = model.gpt
        if dtype != torch.float32:
            gpt.to(dtype)  # the GPT runs in half precision; the vocoder keeps float32
        self.gpt = gpt
        self.prefix_cache = PrefixCache(prefix_cache_voices)
        self.intake = RequestIntake(model, device=self.device, dtype=dtype, max_cond_tokens=max_cond_tokens,
                                    prefix_cache=self.prefix_cache)
        self.model_dim = self.intake.model_dim
        self.max_gen_tokens = self.intake.max_gen_tokens
        self.batcher = DecodeBatcher(
            gpt, max_batch=max_batch_size, max_seq=self.intake.max_seq, device=self.device, dtype=dtype,
            prefix_cache=self.prefix_cache,
        )
        self.max_batch_size = max_batch_size
        self.vocoder = vocoder if vocoder is not None else model.hifigan_decoder
        frame_decoder = frame_decoder_for(self.vocoder)
        if frame_decoder is None:
            logger.warning("vocoder has no frame-level entry point: each sentence is vocoded whole when it ends")
        self.window = window or WindowConfig()
        hifi = model.hifigan_decoder
        self.stream_timeout = stream_timeout
        self.stats = EngineStats()
        self._lock = threading.Condition()
        # Requests waiting for a decode row, served in weighted fair order by tenant (cost: characters).
        self._pending: FairQueue[Job] = FairQueue()
        self._tickets: dict[int, Ticket[Job]] = {}  # id(job) -> its place in _pending
        self.on_queue_wait: Callable[[Share, float], None] | None = None  # (share, seconds) as a job gets a row
        self._stops = StopRequests(self._lock)
        self.output = RequestOutputs(
            self.batcher, self.stats, self._stops, vocoder=self.vocoder, frame_decoder=frame_decoder,
            window=self.window, stride_ratio=hifi.ar_mel_length_compression / hifi.output_hop_length,
            rate_ratio=hifi.output_sample_rate / hifi.input_sample_rate, device=self.device,
            pipeline=pipeline_vocoding, vocoder_threads=vocoder_threads, vocode_batch=vocode_batch,
        )
        self.stats.gauges = lambda: (len(self.batcher.rows), len(self._pending))
        self.stats.prefix_cache = lambda: (self.prefix_cache.hits, self.prefix_cache.misses)
        self._thread: threading.Thread | None = None
        self._running = False

    @classmethod
    def from_artifact(
        cls, path: Any, device: str | torch.device = "auto", vocoder_backend: str | None = None, **kwargs: Any
    ) -> XttsEngine:
        """Load a served artifact (see tts_engine.xtts.artifact) and build the engine on it.

        The vocoder is the torch HiFi-GAN or the artifact's ONNX generator: `vocoder_backend` "torch",
        "onnx" or "auto" (time both on this device, keep the faster); None reads XTTS_VOCODER_BACKEND,
        else "auto". An explicit `vocoder=` keyword bypasses the choice.
        """
        from tts_engine.xtts.artifact import load_artifact
        from tts_engine.xtts.onnx_vocoder import select_vocoder

        resolved = resolve_device(device)
        artifact = load_artifact(path, device=str(resolved))
        if kwargs.get("vocoder") is None:
            kwargs["vocoder"] = select_vocoder(artifact, resolved, vocoder_backend)
        engine = cls(artifact.model, device=resolved, **kwargs)
        engine.manifest = artifact.manifest
        return engine

    @property
    def worker(self) -> VocodeWorker | None:
        """The vocoder thread(s); None when chunks are vocoded between decode steps."""
        return self.output.worker

    @property
    def frame_decoder(self) -> FrameDecoder | None:
        return self.output.frame_decoder

    @frame_decoder.setter
    def frame_decoder(self, decode: FrameDecoder | None) -> None:
        self.output.frame_decoder = decode  # benchmarks and tests wrap it; new sentences use it

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        if self.worker is not None:
            self.worker.start()
        self._thread = threading.Thread(target=self._loop, name="xtts-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; requests still queued or running fail with EngineError."""
        with self._lock:
            self._running = False
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        error = EngineError("engine stopped")
        for job in list(self.batcher.rows):
            self.output.fail(job, error)
        with self._lock:
            pending = self._pending.drain()
            self._tickets.clear()
        for job in pending:
            self.output.fail(job, error)
        if self.worker is not None:
            for job in self.worker.stop(timeout):
                self.output.fail(job, error)
        self._update_gauges()

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> XttsEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests ----------------------------------------------------------------------------

    def submit(
        self,
        text: str,
        language: str,
        gpt_cond_latent: Any,
        speaker_embedding: Any,
        params: SynthesisParams | None = None,
        share: Share | None = None,
    ) -> SynthesisStream:
        """Queue a synthesis; raises ValueError for a bad request (nothing is queued then).

        `share` (tenant and weight) places it among the requests waiting for a decode row; none: the
        anonymous tenant, weight 1."""
        params = params or SynthesisParams()
        try:
            job = self.intake.make_job(text, language, gpt_cond_latent, params)
            speaker = self.intake.speaker_tensor(speaker_embedding)
        except ValueError:
            self.stats.add("rejected")
            raise
        if not self._running:
            raise EngineError("engine is not running")
        stream = SynthesisStream(self.stream_timeout, on_cancel=functools.partial(self._stops.add, job))
        job.context = RequestState(stream=stream, speaker=speaker, submitted=time.monotonic())
        share = share or Share()
        with self._lock:
            self._tickets[id(job)] = self._pending.push(job, share, cost=len(text))
            self._lock.notify_all()
        self.stats.add("requests_submitted")
        self._update_gauges()
        return stream

    def synthesize(self, text: str, language: str, gpt_cond_latent: Any, speaker_embedding: Any,
                   params: SynthesisParams | None = None) -> np.ndarray:
        """Blocking convenience: the whole utterance as one float32 array (chunks concatenated)."""
        chunks = [c.audio for c in self.submit(text, language, gpt_cond_latent, speaker_embedding, params)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    def condition(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Reference audio (mono float32) -> (gpt_cond_latent [N, D], speaker_embedding [512]), float32."""
        # Read-only use of modules the loop thread does not touch (conditioning encoder, speaker encoder).
        if self.device.type == "cuda" and self.dtype != torch.float32:
            with torch.autocast(device_type="cuda", dtype=self.dtype):
                return compute_conditioning(self.model, audio, sample_rate)
        return compute_conditioning(self.model, audio, sample_rate)

    def vocode(self, latents: torch.Tensor, speaker_embedding: Any, speed: float = 1.0) -> np.ndarray:
        """Whole-utterance vocoding of latents [T, D], as the reference `Xtts.inference` does it."""
        return self.output.vocode_whole(latents, self.intake.speaker_tensor(speaker_embedding), speed)

    def generate_codes(self, requests: list[CodeRequest]) -> list[CodeResult]:
        """Offline runs through the real batcher, no audio (tts_engine.xtts.offline); loop stopped only."""
        return generate_codes(self, requests)

    # -- loop --------------------------------------------------------------------------------

    def _update_gauges(self) -> None:
        self.stats.active_requests = len(self.batcher.rows)
        self.stats.queued_requests = len(self._pending)

    def _loop(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._lock:
                while self._running and not self._pending and not self.batcher.rows:
                    self._lock.wait()
                if not self._running:
                    return
                stopped = self._stops.take()
                for key in stopped & self._tickets.keys():
                    ticket = self._tickets.pop(key)
                    if self._pending.remove(ticket):
                        self.output.finish_cancelled(ticket.item)
            for job in list(self.batcher.rows):
                if id(job) in stopped:
                    self.output.finish_cancelled(job)
            self._admit()
            self._update_gauges()
            if self.batcher.rows:
                self.run_step()

    def _admit(self) -> None:
        """Fill free decode rows from the waiting requests, fairest first."""
        admitted: list[Ticket[Job]] = []
        with self._lock:
            while self._pending and self.batcher.free_rows:
                ticket = self._pending.pop_ticket()
                self._tickets.pop(id(ticket.item), None)
                self.batcher.add(ticket.item)
                admitted.append(ticket)
        if self.on_queue_wait is not None:
            now = time.monotonic()
            for ticket in admitted:
                context = ticket.item.context
                self.on_queue_wait(ticket.share, now - context.submitted if context is not None else 0.0)

    def run_step(self) -> None:
        """One decode step for every active job, then their output; failures fail their own job."""
        started = time.perf_counter()
        try:
            events, failed = self.batcher.step()
        except Exception as exc:  # noqa: BLE001 - a failed batched step fails the jobs in it, not the loop
            logger.exception("decode step failed")
            for job in list(self.batcher.rows):
                self.output.fail(job, EngineError(f"decode failed: {type(exc).__name__}"))
            return
        self.stats.record_step(len(events), time.perf_counter() - started)
        for job, error in failed:
            logger.warning("request failed in prefill: %s", type(error).__name__)
            self.output.fail(job, EngineError(f"prefill failed: {type(error).__name__}: {error}"))
        for event in events:
            try:
                self.output.after_token(event.job, event.sentence_done)
            except Exception as exc:  # noqa: BLE001 - e.g. a vocoder failure fails this request only
                logger.warning("request failed in vocoding: %s", type(exc).__name__)
                self.output.fail(event.job, EngineError(f"vocoding failed: {type(exc).__name__}: {exc}"))
