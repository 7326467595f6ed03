"""The XTTS serving engine: continuous-batching GPT decode plus windowed streaming vocoding.

One background thread owns the model and runs the loop; requests arrive from any thread through
`submit()` and stream back through `SynthesisStream`. Each loop iteration: drop cancelled
requests (their rows free at once), admit queued requests into free rows, advance every active
request by one audio token (`DecodeBatcher.step`), then hand the requests whose next chunk is due
to the vocoder thread (`VocodeWorker`), which vocodes and emits them while the loop decodes on.
A failure in one request's prefill or vocoding fails that request only.

Tail handling: like both reference paths, one latent is vocoded per decode step, including the step
whose token was the stop token (Coqui's `inference` recomputes the latents with a parallel pass and
keeps `len(codes incl. stop)` of them via its `[:, :-5]` cut; `inference_stream` keeps the per-step
hidden states). The engine takes the per-step latents from its KV-cached pass (equal to the
recomputed ones up to float noise), for streaming and non-streaming alike.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tts_contract.languages import CHAR_LIMITS, normalise_language
from tts_contract.tensors import SPEAKER_EMBEDDING_DIM
from tts_engine.xtts.batcher import DecodeBatcher, Job
from tts_engine.xtts.conditioning import compute_conditioning
from tts_engine.xtts.prefix_cache import DEFAULT_VOICES, PrefixCache, voice_key
from tts_engine.xtts.stats import EngineStats
from tts_engine.xtts.text import split_text
from tts_engine.xtts.types import SAMPLE_RATE, AudioChunk, EngineError, SynthesisParams
from tts_engine.xtts.vocode_worker import Segment, VocodeWorker
from tts_engine.xtts.vocoding import LatentFrames, SentenceVocoder, WindowConfig, frame_decoder_for

logger = logging.getLogger(__name__)

_END = object()


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class SynthesisStream:
    """Iterator of a request's AudioChunks; blocks up to `timeout` seconds per chunk. `cancel()` stops it."""

    def __init__(self, engine: XttsEngine, timeout: float):
        self._engine = engine
        self._queue: queue.Queue = queue.Queue()
        self.timeout = timeout
        self.cancelled = False
        self._finished = False
        self._job: Job | None = None

    def __iter__(self) -> SynthesisStream:
        return self

    def __next__(self) -> AudioChunk:
        if self._finished:
            raise StopIteration
        try:
            item = self._queue.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"no audio within {self.timeout} s") from None
        if item is _END:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        return item

    def cancel(self) -> None:
        """Stop generation; the request's row is freed before the engine's next decode step."""
        if not self.cancelled:
            self.cancelled = True
            self._engine._cancel(self)

    def _put(self, item: Any) -> None:
        self._queue.put(item)


@dataclass(eq=False)
class _RequestState:
    stream: SynthesisStream | None
    speaker: torch.Tensor  # [1, 512, 1] for the vocoder
    submitted: float
    vocoder: SentenceVocoder | None = None
    chunk_index: int = 0
    last_chunk_latents: int = 0
    scheduled_chunks: int = 0  # chunks handed to the vocoder thread (decode loop's count)
    scheduled_end: int = 0  # frames of the current sentence handed to the vocoder thread
    first_chunk_at: float | None = None
    closed: bool = False  # the stream has received its end (or an error)
    collect: list | None = None  # generate_codes: per-sentence (codes, latents, stopped)


@dataclass
class CodeRequest:
    """Input of `generate_codes`: one request and the decode step at which it arrives."""

    text: str
    language: str
    gpt_cond_latent: Any
    params: SynthesisParams = field(default_factory=lambda: SynthesisParams(do_sample=False))
    arrival_step: int = 0
    speaker_embedding: Any = None


@dataclass
class CodeResult:
    sentence_codes: list[list[int]]
    sentence_latents: list[torch.Tensor]  # [T, D] float32 on CPU per sentence
    stopped: list[bool]

    @property
    def codes(self) -> list[int]:
        return [c for codes in self.sentence_codes for c in codes]


class XttsEngine:
    """Continuous-batching XTTS-v2 synthesis over a loaded Coqui `Xtts` model."""

    def __init__(
        self,
        model,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        max_batch_size: int = 32,
        vocoder=None,
        window: WindowConfig | None = None,
        max_cond_tokens: int | None = None,
        stream_timeout: float = 120.0,
        prefix_cache_voices: int = DEFAULT_VOICES,
        pipeline_vocoding: bool = True,
        vocoder_threads: int = 1,
    ):
        self.device = resolve_device(device)
        if dtype is None:
            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        if self.device.type == "cpu" and dtype != torch.float32:
            raise ValueError("the CPU path runs in float32")
        if not 1 <= max_batch_size <= 1024:
            raise ValueError("max_batch_size must be in [1, 1024]")
        model.eval()  # Xtts.eval() returns None
        model.to(self.device)
        self.model = model
        self.dtype = dtype
        gpt = model.gpt
        if dtype != torch.float32:
            gpt.to(dtype)  # the GPT runs in half precision; the vocoder keeps float32
        self.gpt = gpt
        self.tokenizer = model.tokenizer
        self.model_dim = gpt.model_dim
        self.max_gen_tokens = int(gpt.max_gen_mel_tokens)
        self.max_text_tokens = int(model.args.gpt_max_text_tokens)
        self.uses_perceiver = bool(gpt.use_perceiver_resampler)
        self.max_cond_tokens = 32 if self.uses_perceiver else int(max_cond_tokens or 512)
        max_seq = self.max_cond_tokens + self.max_text_tokens + 2 + self.max_gen_tokens + 1
        self.prefix_cache = PrefixCache(prefix_cache_voices)
        self.batcher = DecodeBatcher(
            gpt, max_batch=max_batch_size, max_seq=max_seq, device=self.device, dtype=dtype,
            prefix_cache=self.prefix_cache,
        )
        self.max_batch_size = max_batch_size
        self.vocoder = vocoder if vocoder is not None else model.hifigan_decoder
        self.frame_decoder = frame_decoder_for(self.vocoder)
        if self.frame_decoder is None:
            logger.warning("vocoder has no frame-level entry point: each sentence is vocoded whole when it ends")
        self.window = window or WindowConfig()
        # Vocoding beside the decode loop (vocode_worker.py); False vocodes between decode steps.
        self.worker = VocodeWorker(self._run_segment, self._fail_from_worker, threads=vocoder_threads) \
            if pipeline_vocoding and self.frame_decoder is not None else None
        self._close_lock = threading.Lock()
        hifi = model.hifigan_decoder
        self.stride_ratio = hifi.ar_mel_length_compression / hifi.output_hop_length
        self.rate_ratio = hifi.output_sample_rate / hifi.input_sample_rate
        self.stream_timeout = stream_timeout
        self.stats = EngineStats()
        self.stats.gauges = lambda: (len(self.batcher.rows), len(self._pending))
        self.stats.prefix_cache = lambda: (self.prefix_cache.hits, self.prefix_cache.misses)
        self._lock = threading.Condition()
        self._pending: deque[Job] = deque()
        self._cancelled: set[int] = set()
        self._thread: threading.Thread | None = None
        self._running = False

    @classmethod
    def from_artifact(
        cls, path, device: str | torch.device = "auto", vocoder_backend: str | None = None, **kwargs
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
            self._fail(job, error)
        with self._lock:
            pending, self._pending = list(self._pending), deque()
        for job in pending:
            self._fail(job, error)
        if self.worker is not None:
            for job in self.worker.stop(timeout):
                self._fail(job, error)
        self._update_gauges()

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> XttsEngine:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests ----------------------------------------------------------------------------

    def submit(
        self,
        text: str,
        language: str,
        gpt_cond_latent,
        speaker_embedding,
        params: SynthesisParams | None = None,
    ) -> SynthesisStream:
        """Queue a synthesis; raises ValueError for a bad request (nothing is queued then)."""
        params = params or SynthesisParams()
        try:
            job = self._make_job(text, language, gpt_cond_latent, params)
            speaker = self._speaker_tensor(speaker_embedding)
        except ValueError:
            self.stats.add("rejected")
            raise
        if not self._running:
            raise EngineError("engine is not running")
        stream = SynthesisStream(self, self.stream_timeout)
        job.context = _RequestState(stream=stream, speaker=speaker, submitted=time.monotonic())
        stream._job = job
        with self._lock:
            self._pending.append(job)
            self._lock.notify_all()
        self.stats.add("requests_submitted")
        self._update_gauges()
        return stream

    def synthesize(self, text: str, language: str, gpt_cond_latent, speaker_embedding, params=None) -> np.ndarray:
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

    # -- validation --------------------------------------------------------------------------

    def _cond_tensor(self, latent) -> torch.Tensor:
        tensor = torch.as_tensor(np.asarray(latent, dtype=np.float32) if not torch.is_tensor(latent) else latent)
        if tensor.ndim == 3 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 2 or tensor.shape[1] != self.model_dim:
            raise ValueError(f"gpt_cond_latent must have shape [N, {self.model_dim}], got {list(tensor.shape)}")
        n = tensor.shape[0]
        if self.uses_perceiver and n != 32:
            raise ValueError(f"gpt_cond_latent must have 32 rows for this model, got {n}")
        if not 1 <= n <= self.max_cond_tokens:
            raise ValueError(f"gpt_cond_latent must have 1..{self.max_cond_tokens} rows, got {n}")
        if not torch.isfinite(tensor).all():
            raise ValueError("gpt_cond_latent contains NaN or infinite values")
        return tensor.to(self.device, self.dtype)

    def _speaker_tensor(self, embedding) -> torch.Tensor:
        if embedding is None:
            raise ValueError("speaker_embedding is required")
        tensor = torch.as_tensor(
            np.asarray(embedding, dtype=np.float32) if not torch.is_tensor(embedding) else embedding
        ).float()
        if tensor.numel() != SPEAKER_EMBEDDING_DIM or tensor.shape[-1] not in (SPEAKER_EMBEDDING_DIM, 1):
            raise ValueError(f"speaker_embedding must have {SPEAKER_EMBEDDING_DIM} values, got {list(tensor.shape)}")
        if not torch.isfinite(tensor).all():
            raise ValueError("speaker_embedding contains NaN or infinite values")
        return tensor.reshape(1, SPEAKER_EMBEDDING_DIM, 1).to(self.device)

    def _tokenize(self, text: str, language: str) -> list[list[int]]:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string")
        limit = min(CHAR_LIMITS[language], self.tokenizer.char_limits.get(language, CHAR_LIMITS[language]))
        sentences = []
        for segment in split_text(text, language, limit):
            segment = segment.strip().lower()
            try:
                tokens = self.tokenizer.encode(segment, lang=language)
            except Exception as exc:  # never echo the text
                reason = type(exc).__name__
                raise ValueError(f"text could not be tokenised for language {language!r}: {reason}") from None
            if len(tokens) >= self.max_text_tokens:
                limit = self.max_text_tokens
                raise ValueError(f"a sentence has {len(tokens)} tokens; the model takes fewer than {limit}")
            sentences.append(tokens)
        if not sentences:
            raise ValueError("text must be a non-empty string")
        return sentences

    def _make_job(self, text: str, language: str, gpt_cond_latent, params: SynthesisParams) -> Job:
        if not isinstance(params, SynthesisParams):
            raise ValueError("params must be a SynthesisParams")
        params.validate()
        language = normalise_language(language)
        cond = self._cond_tensor(gpt_cond_latent)
        sentences = self._tokenize(text, language)
        max_new = min(params.max_new_tokens or self.max_gen_tokens, self.max_gen_tokens)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        generator = torch.Generator().manual_seed(seed)
        key = voice_key(cond) if self.prefix_cache.enabled and cond.shape[0] else None
        return Job(sentences=sentences, cond_latent=cond, params=params, max_new_tokens=max_new, generator=generator,
                   prefix_key=key)

    # -- loop --------------------------------------------------------------------------------

    def _cancel(self, stream: SynthesisStream) -> None:
        with self._lock:
            if stream._job is not None:
                self._cancelled.add(id(stream._job))
            self._lock.notify_all()

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
                cancelled, self._cancelled = self._cancelled, set()
                for job in list(self._pending):
                    if id(job) in cancelled:
                        self._pending.remove(job)
                        self._finish_cancelled(job)
            for job in list(self.batcher.rows):
                if id(job) in cancelled:
                    self._finish_cancelled(job)
            with self._lock:
                while self._pending and self.batcher.free_rows:
                    self.batcher.add(self._pending.popleft())
            self._update_gauges()
            if self.batcher.rows:
                self._iterate()

    def _iterate(self) -> None:
        started = time.perf_counter()
        try:
            events, failed = self.batcher.step()
        except Exception as exc:  # noqa: BLE001 - a failed batched step fails the jobs in it, not the loop
            logger.exception("decode step failed")
            for job in list(self.batcher.rows):
                self._fail(job, EngineError(f"decode failed: {type(exc).__name__}"))
            return
        self.stats.record_step(len(events), time.perf_counter() - started)
        for job, exc in failed:
            logger.warning("request failed in prefill: %s", type(exc).__name__)
            self._fail(job, EngineError(f"prefill failed: {type(exc).__name__}: {exc}"))
        for event in events:
            job = event.job
            try:
                self._after_token(job, event.sentence_done)
            except Exception as exc:  # noqa: BLE001 - e.g. a vocoder failure fails this request only
                logger.warning("request failed in vocoding: %s", type(exc).__name__)
                self._fail(job, EngineError(f"vocoding failed: {type(exc).__name__}: {exc}"))

    # -- per-request output ------------------------------------------------------------------

    def _after_token(self, job: Job, sentence_done: bool) -> None:
        state: _RequestState = job.context
        if state.collect is not None:  # generate_codes: no audio
            if sentence_done:
                latents = torch.stack(job.latents).float().cpu()
                state.collect.append((list(job.codes), latents, job.stopped))
                self._next_sentence_or_end(job, None)
            return
        if state.stream is not None and state.stream.cancelled:
            self._finish_cancelled(job)
            return
        n = len(job.latents)
        if self.worker is not None:
            self._schedule(job, state, n, sentence_done)
            return
        if sentence_done:
            audio = self._vocode_final(job, state)
            self._next_sentence_or_end(job, audio)
            return
        due = job.params.first_chunk_tokens if state.chunk_index == 0 else job.params.chunk_tokens
        if self.frame_decoder is not None and n - state.last_chunk_latents >= due:
            audio = self._sentence_vocoder(job, state).chunk(torch.stack(job.latents), final=False)
            if audio is not None and audio.size:
                state.last_chunk_latents = n
                self._emit(job, state, audio, is_last=False)

    def _schedule(self, job: Job, state: _RequestState, n: int, sentence_done: bool) -> None:
        """Decode-loop side of pipelined vocoding: hand due work to the vocoder thread."""
        vocoder = self._sentence_vocoder(job, state)
        first = state.first_chunk_at is None
        if sentence_done:
            latents = torch.stack(job.latents)
            state.vocoder = None
            state.last_chunk_latents = state.scheduled_end = 0
            state.scheduled_chunks += 1
            more = self.batcher.next_sentence(job)
            self.worker.schedule(job, Segment(vocoder, latents, final=True, last=not more), first)
            return
        due = job.params.first_chunk_tokens if state.scheduled_chunks == 0 else job.params.chunk_tokens
        if n - state.last_chunk_latents < due:
            return
        end = vocoder.frames.available(n) - self.window.lookahead_frames
        if end <= state.scheduled_end:
            return  # no frame is final yet: try again after the next token
        state.scheduled_end = end
        state.last_chunk_latents = n
        state.scheduled_chunks += 1
        segment = Segment(vocoder, torch.stack(job.latents), final=False, last=False, first=state.scheduled_chunks == 1)
        self.worker.schedule(job, segment, first)

    def _run_segment(self, job: Job, segment: Segment) -> None:
        """Vocoder-thread side: vocode a segment and emit its audio (and the end, after the last one)."""
        state: _RequestState = job.context
        if state.closed:
            return
        if state.stream is not None and state.stream.cancelled:  # decoding may be over: the loop never sees it
            self.worker.drop(job)
            if self._close(job, _END, free_row=False):
                self.stats.add("requests_cancelled")
            return
        audio = segment.vocoder.chunk(segment.latents, final=segment.final)
        if not segment.final:
            if audio is not None and audio.size:
                self._emit(job, state, audio, is_last=False)
            return
        if audio is not None and (audio.size or segment.last):
            self._emit(job, state, audio, is_last=segment.last)
        if segment.last and self._close(job, _END, free_row=False):
            self.stats.add("requests_completed")

    def _fail_from_worker(self, job: Job, error: BaseException) -> None:
        """A vocoding failure: end the stream now; the decode loop frees the row (it owns the batcher)."""
        if self._close(job, EngineError(f"vocoding failed: {type(error).__name__}: {error}"), free_row=False):
            self.stats.add("requests_failed")
        with self._lock:
            self._cancelled.add(id(job))
            self._lock.notify_all()

    def _sentence_vocoder(self, job: Job, state: _RequestState) -> SentenceVocoder:
        if state.vocoder is None:
            frames = LatentFrames(job.params.speed, self.stride_ratio, self.rate_ratio)
            state.vocoder = SentenceVocoder(frames, self.frame_decoder, state.speaker, self.window)
        return state.vocoder

    def _vocode_final(self, job: Job, state: _RequestState) -> np.ndarray:
        latents = torch.stack(job.latents)
        if self.frame_decoder is not None:
            audio = self._sentence_vocoder(job, state).chunk(latents, final=True)
        else:
            audio = self.vocode(latents, state.speaker, job.params.speed)
        state.vocoder = None
        state.last_chunk_latents = 0
        return audio

    def vocode(self, latents: torch.Tensor, speaker_embedding, speed: float = 1.0) -> np.ndarray:
        """Whole-utterance vocoding of latents [T, D], as the reference `Xtts.inference` does it."""
        speaker = self._speaker_tensor(speaker_embedding)
        z = latents.float()[None].to(self.device)
        length_scale = 1.0 / max(speed, 0.05)
        if length_scale != 1.0:
            z = F.interpolate(z.transpose(1, 2), scale_factor=length_scale, mode="linear").transpose(1, 2)
        with torch.inference_mode():
            wav = self.vocoder(z, g=speaker)
        return wav.reshape(-1).float().cpu().numpy()

    def _next_sentence_or_end(self, job: Job, audio: np.ndarray | None) -> None:
        more = self.batcher.next_sentence(job)
        state: _RequestState = job.context
        if audio is not None and (audio.size or not more):
            self._emit(job, state, audio, is_last=not more)
        if not more and self._close(job, _END):
            self.stats.add("requests_completed")

    def _emit(self, job: Job, state: _RequestState, audio: np.ndarray, is_last: bool) -> None:
        if state.first_chunk_at is None:
            state.first_chunk_at = time.monotonic()
            self.stats.observe_first_chunk(state.first_chunk_at - state.submitted)
        self.stats.add("audio_seconds", audio.size / SAMPLE_RATE)
        state.stream._put(AudioChunk(audio=audio, index=state.chunk_index, is_last=is_last))
        state.chunk_index += 1

    def _close(self, job: Job, item: Any, free_row: bool = True) -> bool:
        """Free the job's row and end its stream with `item`, once. False when it was already closed.

        Only the decode loop (or a stopped engine) frees rows; the vocoder thread passes free_row=False.
        """
        if free_row and job.row is not None:
            self.batcher.remove(job)
        if free_row and self.worker is not None:
            self.worker.drop(job)
        state: _RequestState | None = job.context
        with self._close_lock:
            if state is None or state.closed:
                return False
            state.closed = True
        if state.stream is not None:
            state.stream._put(item)
        return True

    def _fail(self, job: Job, error: BaseException) -> None:
        if self._close(job, error):
            self.stats.add("requests_failed")

    def _finish_cancelled(self, job: Job) -> None:
        if self._close(job, _END):
            self.stats.add("requests_cancelled")

    # -- synchronous runs (parity tests, benchmarks) -----------------------------------------

    def generate_codes(self, requests: list[CodeRequest]) -> list[CodeResult]:
        """Run requests through the real batcher, each joining at its `arrival_step`; no audio.

        Only while the background loop is stopped (the two would share the KV cache).
        """
        if self._running:
            raise EngineError("generate_codes runs only while the engine loop is stopped")
        jobs = []
        for request in requests:
            job = self._make_job(request.text, request.language, request.gpt_cond_latent, request.params)
            job.context = _RequestState(stream=None, speaker=torch.zeros(0), submitted=time.monotonic(), collect=[])
            jobs.append((request.arrival_step, job))
            self.stats.add("requests_submitted")  # every request ends as completed/failed: keep in-flight exact
        waiting = sorted(jobs, key=lambda item: item[0])
        step = 0
        while waiting or self.batcher.rows:
            while waiting and waiting[0][0] <= step and self.batcher.free_rows:
                self.batcher.add(waiting.pop(0)[1])
            if self.batcher.rows:
                self._iterate()
            step += 1
        results = []
        for _, job in jobs:
            collected = job.context.collect
            results.append(
                CodeResult(
                    sentence_codes=[c for c, _, _ in collected],
                    sentence_latents=[lat for _, lat, _ in collected],
                    stopped=[s for _, _, s in collected],
                )
            )
        return results
