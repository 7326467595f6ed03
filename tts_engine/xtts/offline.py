"""Offline code generation: requests run through the real batcher step by step, with no audio.

Used by the parity tests (the engine's greedy codes must equal Coqui's reference `Xtts.inference`)
and by the benchmarks; serving never comes here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from tts_engine.xtts.batcher import Job
from tts_engine.xtts.output import CollectedSentence, RequestState
from tts_engine.xtts.types import EngineError, SynthesisParams

if TYPE_CHECKING:
    from tts_engine.xtts.engine import XttsEngine


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


def generate_codes(engine: XttsEngine, requests: list[CodeRequest]) -> list[CodeResult]:
    """Run requests through the engine's batcher, each joining at its `arrival_step`; no audio.

    Only while the background loop is stopped (the two would share the KV cache).
    """
    if engine.running:
        raise EngineError("generate_codes runs only while the engine loop is stopped")
    jobs: list[tuple[int, Job, list[CollectedSentence]]] = []
    for request in requests:
        job = engine.intake.make_job(request.text, request.language, request.gpt_cond_latent, request.params)
        collected: list[CollectedSentence] = []
        job.context = RequestState(stream=None, speaker=torch.zeros(0), submitted=time.monotonic(), collect=collected)
        jobs.append((request.arrival_step, job, collected))
        engine.stats.add("requests_submitted")  # every request ends as completed/failed: keep in-flight exact
    waiting = sorted(jobs, key=lambda item: item[0])
    batcher = engine.batcher
    step = 0
    while waiting or batcher.rows:
        while waiting and waiting[0][0] <= step and batcher.free_rows:
            batcher.add(waiting.pop(0)[1])
        if batcher.rows:
            engine.run_step()
        step += 1
    return [CodeResult(sentence_codes=[s.codes for s in collected], sentence_latents=[s.latents for s in collected],
                       stopped=[s.stopped for s in collected]) for _, _, collected in jobs]
