"""Opt-in per-request stage timestamps on the way to the first audio byte (`TTS_STAGE_TIMING`).

With the setting on, the request middleware starts a `StageClock` for each HTTP request (not a
refusal of the admission gate, answered outside it) and logs its marks when the request ends: one
JSON line, logger `tts_gateway.stages`, message `stages`, field `stages_ms` (milliseconds since the
middleware saw the request, first occurrence of each mark only) and `origin_monotonic` (the clock's
start on CLOCK_MONOTONIC, which a client on the same host can compare with its own send time).
No text or audio is logged.

With it off (the default) no clock exists and `mark()` is one context-variable read: the hot path
pays nothing measurable. The clock travels in a context variable, so the tasks a request spawns
(the response body, segment feeds) see the same clock.
"""

from __future__ import annotations

import contextvars
import logging
import time

log = logging.getLogger("tts_gateway.stages")

# The marks the synthesis path sets, in the order a request passes them (docs/benchmarks.md, ttfa).
STAGES = (
    "authed",  # API key checked, rate limits counted
    "handler",  # body parsed and validated, the route's handler entered
    "voice",  # the request's voice resolved, the tenant's lexicons read
    "planned",  # the plan made: SSML or text, sentence split, normalisation, lexicons
    "languages",  # segment voices and languages checked, text put in each engine's form (phonemes...)
    "prepared",  # model versions known, cache key made
    "render",  # characters charged, cache missed, stream slot held: rendering begins
    "engine_sent",  # the engine's gRPC call started
    "engine_first",  # the first audio response from the engine received
    "first_pcm",  # first audio resampled to the output rate
    "first_encoded",  # first bytes of the output format encoded
    "first_written",  # those bytes handed to the server's transport
)


class StageClock:
    __slots__ = ("origin", "marks")

    def __init__(self) -> None:
        self.origin = time.monotonic()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        if name not in self.marks:
            self.marks[name] = time.monotonic() - self.origin

    def as_ms(self) -> dict[str, float]:
        return {name: round(seconds * 1000, 3) for name, seconds in self.marks.items()}


_clock: contextvars.ContextVar[StageClock | None] = contextvars.ContextVar("stage_clock", default=None)


def start() -> tuple[StageClock, contextvars.Token[StageClock | None]]:
    clock = StageClock()
    return clock, _clock.set(clock)


def stop(clock: StageClock, token: contextvars.Token[StageClock | None]) -> None:
    """Log the request's marks (the line carries the request id of the request being served)."""
    _clock.reset(token)
    if clock.marks:
        log.info("stages", extra={"origin_monotonic": round(clock.origin, 6), "stages_ms": clock.as_ms()})


def mark(name: str) -> None:
    """Record `name` on the current request's clock, if it has one (first occurrence wins)."""
    clock = _clock.get()
    if clock is not None:
        clock.mark(name)
