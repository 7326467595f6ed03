"""A GPU-check run on a paced side (no model) whose real-time search gets stuck: levels 1 and 2 pass,
and the streams of level 4 block like a device call that never returns, until the process is ended.

`python -m tests.bench.stuck_check OUT TIMEOUT_S GRACE_S`: the phase's deadline is TIMEOUT_S away and
the watchdog ends the process GRACE_S after it. What stops it is the test's to choose: the watchdog,
SIGTERM or SIGKILL.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bench import gpu_stage
from bench.gpu_check import GpuRecord
from bench.workload import BenchRequest
from tests.bench.paced_side import TOKENS, PacedSide

LEVELS = [1, 2, 4]


class StuckAfterThree(PacedSide):
    """Fast for the first three streams (levels 1 and 2), then every stream blocks for good."""

    def __init__(self) -> None:
        super().__init__(capacity=50.0)
        self.started = 0
        self.never = threading.Event()

    def stream(self, request: BenchRequest, on_tokens: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        with self.lock:
            self.started += 1
            stuck = self.started > 3
        if stuck:
            self.never.wait()
        yield from super().stream(request, on_tokens)


def main(out: Path, timeout_s: float, grace_s: float) -> None:
    gpu_stage.WATCHDOG_GRACE_S = grace_s
    result = {"machine": {"cpu": "paced side", "cores": 1}, "config": {}, "model": {"name": "paced"},
              "phases": {}, "figures": {}, "problems": [], "elapsed_s": 0.0}
    record = GpuRecord(out, result, time.perf_counter())
    side = StuckAfterThree()
    with record.written_on_sigterm():
        gpu_stage.run_phase(
            record.phases, "realtime", timeout_s, time.perf_counter() + timeout_s, gpu_stage.Watchdog(record.write),
            lambda d: gpu_stage.phase_realtime(side, LEVELS, TOKENS, d, record.progress("realtime")),  # type: ignore[arg-type]
            record.write)
    record.write()


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
