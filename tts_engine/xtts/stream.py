"""The per-request stream a caller reads, and the set of requests the decode loop must drop.

A stream knows nothing of the engine: cancelling it files a stop request (`StopRequests.add`),
which the decode loop acts on before its next step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from tts_engine.xtts.types import AudioChunk

if TYPE_CHECKING:
    from tts_engine.xtts.batcher import Job

END = object()  # the stream's last item: iteration stops
StreamItem = AudioChunk | BaseException | object  # a chunk, the error that ended it, or END


class SynthesisStream:
    """Iterator of a request's AudioChunks; blocks up to `timeout` seconds per chunk. `cancel()` stops it."""

    def __init__(self, timeout: float, on_cancel: Callable[[], None]):
        self._queue: queue.Queue[StreamItem] = queue.Queue()
        self._on_cancel = on_cancel
        self.timeout = timeout
        self.cancelled = False
        self._finished = False

    def __iter__(self) -> SynthesisStream:
        return self

    def __next__(self) -> AudioChunk:
        if self._finished:
            raise StopIteration
        try:
            item = self._queue.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"no audio within {self.timeout} s") from None
        if item is END:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        assert isinstance(item, AudioChunk)
        return item

    def cancel(self) -> None:
        """Stop generation; the request's row is freed before the engine's next decode step."""
        if not self.cancelled:
            self.cancelled = True
            self._on_cancel()

    def put(self, item: StreamItem) -> None:
        """Producer side (the engine's threads): a chunk, END, or the error that ends the stream."""
        self._queue.put(item)


class StopRequests:
    """Jobs the decode loop drops at its next turn (cancelled by the caller, or failed in vocoding).

    Shares the engine's condition, so filing one wakes a loop that waits for work.
    """

    def __init__(self, condition: threading.Condition):
        self._condition = condition
        self._ids: set[int] = set()

    def add(self, job: Job) -> None:
        with self._condition:
            self._ids.add(id(job))
            self._condition.notify_all()

    def take(self) -> set[int]:
        """The ids filed since the last take (call with the condition held)."""
        ids, self._ids = self._ids, set()
        return ids
