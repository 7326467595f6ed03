"""Closed-loop concurrent clients: `concurrency` threads share a list of requests and stream each one.

Every side is driven the same way: a side is an object with `name` and
`stream(request, on_tokens) -> iterator of float32 audio chunks`; the driver timestamps the
submission, every chunk and the end, and counts samples.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import numpy as np

from bench.metrics import RequestRecord
from bench.workload import BenchRequest

HOP = 256
CODE_TO_FRAMES = 4  # gpt_code_stride_len 1024 / hop 256
RATE_RATIO = 24000 / 22050


class Side(Protocol):
    name: str

    def stream(self, request: BenchRequest, on_tokens: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        ...


def expected_samples(tokens: int) -> int:
    """Samples HiFi-GAN makes from `tokens` latents at speed 1 (XTTS's interpolation chain, then 256 per frame)."""
    return HOP * math.floor(math.floor(tokens * CODE_TO_FRAMES) * RATE_RATIO)


def run_one(side: Side, request: BenchRequest) -> RequestRecord:
    counted = [0]

    def on_tokens(n: int) -> None:
        counted[0] += n

    record = RequestRecord(request.index, request.tokens, time.perf_counter())
    try:
        for chunk in side.stream(request, on_tokens):
            now = time.perf_counter()
            if chunk.size == 0:
                continue
            if record.first_audio is None:
                record.first_audio = now
            record.samples += int(chunk.shape[-1])
            record.chunks += 1
            record.chunk_arrivals.append((now, record.samples))
        record.finished = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - one failed request is recorded, the run goes on
        record.error = f"{type(exc).__name__}: {exc}"
    record.tokens_generated = counted[0] if counted[0] else None
    return record


def run_concurrent(side: Side, requests: list[BenchRequest], concurrency: int) -> tuple[list[RequestRecord], float]:
    """Stream all requests with `concurrency` client threads; returns (records in request order, wall seconds)."""
    return run_pool(requests, concurrency, lambda request: run_one(side, request), "bench-client")


R = TypeVar("R")


def run_pool(requests: list[BenchRequest], concurrency: int, run: Callable[[BenchRequest], R], name: str
             ) -> tuple[list[R], float]:
    """`run` every request on `concurrency` client threads taking the next request as each finishes; returns
    (results in request order, wall seconds to the last client's return)."""
    records: list[R | None] = [None] * len(requests)
    next_index = [0]
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(requests):
                return
            records[i] = run(requests[i])

    threads = [threading.Thread(target=client, name=f"{name}-{k}", daemon=True) for k in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return [r for r in records if r is not None], wall


def verify_tokens(records: list[RequestRecord]) -> list[str]:
    """Problems with the work done: a request that failed, or made other than its requested token count."""
    problems = []
    for r in records:
        if r.error:
            problems.append(f"request {r.index}: {r.error}")
            continue
        if r.tokens_generated is not None and r.tokens_generated != r.tokens_requested:
            problems.append(f"request {r.index}: generated {r.tokens_generated} tokens, asked {r.tokens_requested}")
        if r.samples != expected_samples(r.tokens_requested):
            problems.append(
                f"request {r.index}: {r.samples} samples, {expected_samples(r.tokens_requested)} expected for "
                f"{r.tokens_requested} tokens"
            )
    return problems
