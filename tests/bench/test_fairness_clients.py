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


def test_loop_cpu_counts_the_main_thread_of_each_child_process() -> None:
    """A supervisor that only waits, and a worker under it that burns half a second: the worker's loop counts."""
    import subprocess
    import sys

    burn = "import time\nend = time.thread_time() + 0.5\nwhile time.thread_time() < end: pass\ntime.sleep(600)"
    supervisor = subprocess.Popen([sys.executable, "-c", "import subprocess, sys\n"
                                   f"w = subprocess.Popen([sys.executable, '-c', {burn!r}])\n"
                                   "sys.stdin.read()\nw.kill()"], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120  # waited for: a machine many times slower still burns it in that
        while _loop_cpu_s(supervisor.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _loop_cpu_s(supervisor.pid) >= 0.4  # the supervisor alone spends a fraction of that starting
    finally:
        supervisor.communicate(b"")
