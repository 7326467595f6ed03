"""Iteration-level continuous batching of the XTTS GPT decode.

Every `step()` advances every active job by one audio token: jobs admitted since the last step
are prefilled (each alone, so its numbers do not depend on the others; a voice's conditioning
prefix comes from the prefix cache when it was computed before) and take their first token from
the prefill; the rest run one batched decode. A job whose sentence ends (stop token or its
token bound) leaves its row at once; a job with another sentence re-joins at the end of the batch
with a fresh prefill. Rows are kept compact (0..n-1) by moving the last row into a hole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from tts_engine.xtts.gpt_decoder import GptDecoder
from tts_engine.xtts.prefix_cache import PrefixCache
from tts_engine.xtts.sampling import SamplingRows
from tts_engine.xtts.types import SynthesisParams

if TYPE_CHECKING:
    from tts_engine.xtts.output import RequestState


@dataclass(eq=False)
class Job:
    """One request as the batcher sees it: tokenised sentences run one after another in one row."""

    sentences: list[list[int]]
    cond_latent: torch.Tensor  # [N, D] on the engine device
    params: SynthesisParams
    max_new_tokens: int
    generator: torch.Generator | None = None
    prefix_key: bytes | None = None  # the voice's prefix-cache key (None: do not cache)
    sentence_index: int = 0
    row: int | None = None
    needs_prefill: bool = True
    cache_len: int = 0
    codes: list[int] = field(default_factory=list)  # this sentence's audio codes, stop token excluded
    latents: list[torch.Tensor] = field(default_factory=list)  # this sentence's latents, one per decode step
    stopped: bool = False  # this sentence ended with the stop token
    context: RequestState | None = None  # the engine's per-request state (stream, vocoder window, ...)


def _row(job: Job) -> int:
    assert job.row is not None, "only jobs in the batch have a row"
    return job.row


@dataclass
class StepEvent:
    job: Job
    token: int
    sentence_done: bool


class DecodeBatcher:
    """Rows, KV cache and sampling state for up to `max_batch` concurrent jobs."""

    def __init__(
        self,
        gpt: Any,
        *,
        max_batch: int,
        max_seq: int,
        device: torch.device,
        dtype: torch.dtype,
        prefix_cache: PrefixCache | None = None,
    ):
        self.gpt = gpt
        self.prefix_cache = prefix_cache if prefix_cache is not None else PrefixCache(0)
        self.device = device
        self.max_batch = max_batch
        self.decoder = GptDecoder(gpt, max_batch=max_batch, max_seq=max_seq, device=device, dtype=dtype)
        self.max_steps = gpt.max_gen_mel_tokens + 1
        self.sampling = SamplingRows(max_batch, gpt.num_audio_tokens, self.max_steps, device)
        self.stop_token = gpt.stop_audio_token
        self.start_audio_token = gpt.start_audio_token
        self.rows: list[Job] = []
        self.next_tokens = torch.zeros(max_batch, dtype=torch.long, device=device)

    @property
    def free_rows(self) -> int:
        return self.max_batch - len(self.rows)

    def add(self, job: Job) -> None:
        if not self.rows.__len__() < self.max_batch:
            raise RuntimeError("no free row")
        job.row = len(self.rows)
        job.needs_prefill = True
        job.cache_len = 0
        self.rows.append(job)

    def remove(self, job: Job) -> None:
        """Free the job's row now; the last row moves into it."""
        row = job.row
        if row is None:
            return
        last = len(self.rows) - 1
        if row != last:
            moved = self.rows[last]
            self._move(moved, row)
            self.rows[row] = moved
        self.rows.pop()
        job.row = None

    def _move(self, job: Job, row: int) -> None:
        if job.cache_len > 0:  # a job not yet prefilled has nothing in its row
            old = _row(job)
            self.decoder.move_row(old, row, job.cache_len)
            self.sampling.move_row(old, row)
            self.next_tokens[row] = self.next_tokens[old]
        job.row = row

    def _partition(self) -> None:
        """Decoding jobs first (rows 0..m-1, order kept), jobs awaiting prefill after them."""
        decoding = [j for j in self.rows if not j.needs_prefill]
        waiting = [j for j in self.rows if j.needs_prefill]
        for new_row, job in enumerate(decoding):  # new_row <= job.row: copies never overwrite live rows
            if job.row != new_row:
                self._move(job, new_row)
        for new_row, job in enumerate(waiting, start=len(decoding)):
            job.row = new_row
        self.rows = decoding + waiting

    def _start_sentence(self, job: Job) -> None:
        row = _row(job)
        uniforms = None
        if job.params.do_sample:
            uniforms = torch.rand(job.max_new_tokens + 1, generator=job.generator)
        self.sampling.reset(row, job.params, self.start_audio_token, uniforms)
        job.codes = []
        job.latents = []
        job.stopped = False

    def _prefill(self, job: Job, prefix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        voice_len = job.cond_latent.shape[0]
        row = _row(job)
        if voice_len == 0 or job.prefix_key is None:
            return self.decoder.prefill(row, prefix)
        cached = self.prefix_cache.get(job.prefix_key)
        result = self.decoder.prefill(row, prefix, cached)
        if cached is None and self.prefix_cache.enabled:
            self.prefix_cache.put(job.prefix_key, self.decoder.prefix_kv(row, voice_len))
        return result

    @torch.inference_mode()
    def step(self) -> tuple[list[StepEvent], list[tuple[Job, BaseException]]]:
        """Advance every active job by one token. Returns (events in row order, jobs that failed alone)."""
        failed: list[tuple[Job, BaseException]] = []
        prefilled: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._partition()
        for job in [j for j in self.rows if j.needs_prefill]:
            try:
                self._start_sentence(job)
                prefix = self.decoder.prefix_embedding(job.cond_latent, job.sentences[job.sentence_index])
                prefilled[id(job)] = self._prefill(job, prefix)
                job.cache_len = prefix.shape[0]
            except Exception as exc:  # noqa: BLE001 - a bad request fails alone
                failed.append((job, exc))
        for job, _ in failed:
            self.remove(job)
        n = len(self.rows)
        if n == 0:
            return [], failed
        m = sum(1 for j in self.rows if not j.needs_prefill)  # decoding rows are 0..m-1
        logits_parts, latent_parts = [], []
        if m:
            max_len = max(j.cache_len for j in self.rows[:m]) + 1
            logits, latents = self.decoder.decode(
                m, self.next_tokens[:m], self.sampling.step[:m], max_len
            )
            logits_parts.append(logits)
            latent_parts.append(latents)
            for j in self.rows[:m]:
                j.cache_len += 1
        for job in self.rows[m:]:
            logits, latent = prefilled[id(job)]
            logits_parts.append(logits[None])
            latent_parts.append(latent[None])
            job.needs_prefill = False
        logits = torch.cat(logits_parts) if len(logits_parts) > 1 else logits_parts[0]
        latents = torch.cat(latent_parts) if len(latent_parts) > 1 else latent_parts[0]
        tokens = self.sampling.choose(logits, n)
        self.next_tokens[:n] = tokens
        host_tokens = tokens.tolist()  # the one host sync per step: stop decisions and streaming need it
        events: list[StepEvent] = []
        done: list[Job] = []
        for job, token, latent in zip(list(self.rows), host_tokens, latents.unbind(0), strict=True):
            job.latents.append(latent)
            if token == self.stop_token:
                job.stopped = True
            else:
                job.codes.append(token)
            finished = job.stopped or len(job.codes) >= job.max_new_tokens
            events.append(StepEvent(job, token, finished))
            if finished:
                done.append(job)
        for job in sorted(done, key=_row, reverse=True):
            self.remove(job)
        return events, failed

    def next_sentence(self, job: Job) -> bool:
        """After a sentence ends: queue the job's next sentence (re-joins at the end). False when it was the last."""
        if job.sentence_index + 1 >= len(job.sentences):
            return False
        job.sentence_index += 1
        self.add(job)
        return True
