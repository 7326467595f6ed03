"""Streams in flight on this replica: the replica-wide cap and the graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from control_plane.errors import Unavailable
from control_plane.metrics import Metrics

DRAIN_RETRY_AFTER_S = 5


class StreamTracker:
    """Streams in flight on this replica: the `tts_active_streams` gauge, the replica-wide cap
    (MAX_CONCURRENT_STREAMS, 503 past it) and graceful drain (503 + Retry-After to new streams, then
    wait for the running ones)."""

    def __init__(self, max_streams: int, metrics: Metrics | None = None) -> None:
        self.max_streams = max_streams
        self.metrics = metrics
        self.active = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def _changed(self) -> None:
        if self.metrics is not None:
            self.metrics.active_streams.set(self.active)
        if self.active == 0:
            self._idle.set()
        else:
            self._idle.clear()

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        if self.draining:
            raise Unavailable("shutting_down", "this server is shutting down; retry",
                           headers={"Retry-After": str(DRAIN_RETRY_AFTER_S)})
        if self.active >= self.max_streams:
            raise Unavailable("server_busy", f"this server is serving its maximum of {self.max_streams} streams",
                           headers={"Retry-After": "1"})
        self.active += 1
        self._changed()
        try:
            yield
        finally:
            self.active -= 1
            self._changed()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the contract's signature
        """Refuse new streams and wait up to `timeout` s for the running ones; True when none is left."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
