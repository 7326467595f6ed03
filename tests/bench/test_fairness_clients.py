"""The fairness benchmark's reading of the gateway's event-loop CPU (bench/fairness_clients.py)."""

from __future__ import annotations

import os
import threading
import time

from bench.fairness_clients import _loop_cpu_s


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_loop_cpu_counts_the_main_threads_cpu_and_not_other_threads() -> None:
    pid = os.getpid()
    before = _loop_cpu_s(pid)
    _burn(0.03)
    on_main = _loop_cpu_s(pid) - before
    assert 0.02 <= on_main < 5.0  # a running thread's count may lag by up to one scheduler tick
    before = _loop_cpu_s(pid)
    other = threading.Thread(target=_burn, args=(0.05,))
    other.start()
    other.join()
    assert _loop_cpu_s(pid) - before < 0.05  # another thread's CPU is not the loop's
