"""A probe of the event loop's health: how late a periodic wake-up comes.

Every stream, WebSocket ping and request shares one event loop; work that blocks it (a long encode,
a synchronous call) delays all of them at once. The probe sleeps `interval_s` and records how much
later than asked it wakes (`tts_event_loop_lag_seconds`); a busy machine shows a few milliseconds,
a blocked loop shows the length of the block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from control_plane.metrics import Metrics

PROBE_INTERVAL_S = 0.25


async def _probe(metrics: Metrics, interval_s: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(interval_s)
        metrics.event_loop_lag.observe(max(0.0, loop.time() - asked - interval_s))


@contextlib.asynccontextmanager
async def loop_lag_probe(metrics: Metrics, interval_s: float = PROBE_INTERVAL_S) -> AsyncIterator[None]:
    task = asyncio.create_task(_probe(metrics, interval_s))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
