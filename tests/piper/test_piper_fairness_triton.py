"""Piper's fair queue through a real tritonserver: tenants and weights ride as gRPC request parameters.

Order, not time: each test floods the model's workers over one gRPC stream and reads the order in
which requests finish, which FIFO and fair queuing make very different.
"""

from __future__ import annotations

import contextlib
import queue
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_inputs

TEXT = ("Your order has shipped and should arrive on Thursday. "
        "Reply to this message if you need to change the delivery address.")
SHORT_TEXT = "Your order has shipped and should arrive on Thursday."
TIMEOUT_S = 300.0  # the whole flood; generous for a loaded machine


@dataclass
class Flood:
    """Requests sent on one gRPC stream; `finished` lists request ids in the order their final response came."""

    url: str
    finished: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    first_audio: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        import tritonclient.grpc as grpcclient

        self._events: queue.Queue = queue.Queue()
        self._client = grpcclient.InferenceServerClient(self.url)
        self._client.start_stream(callback=lambda result=None, error=None: self._events.put((result, error)))
        self._sent = 0

    def send(self, request_id: str, tenant: str | None = None, weight: float | None = None, text: str = TEXT) -> None:
        import tritonclient.grpc as grpcclient

        parameters: dict[str, str | float] = {}
        if tenant is not None:
            parameters["tenant"] = tenant
        if weight is not None:
            parameters["weight"] = weight
        inputs = make_inputs({"TEXT": np.array([text.encode()], dtype=object)}, grpcclient)
        self._client.async_stream_infer("piper", inputs, request_id=request_id, enable_empty_final_response=True,
                                        parameters=parameters or None)
        self._sent += 1

    def wait_first_audio(self, request_id: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while request_id not in self.first_audio:
            self._take(deadline)

    def wait_all(self) -> list[str]:
        deadline = time.monotonic() + TIMEOUT_S
        while len(self.finished) + len(self.errors) < self._sent:
            self._take(deadline)
        assert not self.errors, self.errors
        return self.finished

    def _take(self, deadline: float) -> None:
        result, error = self._events.get(timeout=max(deadline - time.monotonic(), 0.1))
        if error is not None:
            self.errors[str(getattr(error, "request_id", "?"))] = str(error)
            return
        response = result.get_response()
        if response.outputs and response.id not in self.first_audio:
            self.first_audio.append(response.id)
        if response.parameters["triton_final_response"].bool_param:
            self.finished.append(response.id)

    def close(self) -> None:
        self._client.stop_stream()
        self._client.close()


def _count(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.rindex("}")]))
            if all(found.get(key) == value for key, value in labels.items()):
                total += float(line.split()[-1])
    return total


def test_a_quiet_tenant_goes_ahead_of_a_flooding_tenants_backlog(triton_piper) -> None:
    flood = Flood(triton_piper.grpc_url)
    try:
        flood_ids = [f"a-{i}" for i in range(24)]  # see the bound below
        for request_id in flood_ids:
            flood.send(request_id, tenant="tenant-a")
        flood.wait_first_audio("a-0")  # A's requests are in the model: the first runs, the rest wait
        flood.send("a-late", tenant="tenant-a")  # A's next request queues behind A's own (FIFO within a tenant)
        flood.send("b-0", tenant="tenant-b")  # B's only request
        order = flood.wait_all()
    finally:
        flood.close()
    b_rank = order.index("b-0")
    a_after_b = sum(1 for request_id in flood_ids if order.index(request_id) > b_rank)
    # FIFO would finish B (sent after all 25 of A's) among the last; the model's one fair queue hands B the
    # next free thread (the express one takes B too: B has nothing else waiting or running; a-0 may hold it,
    # having been A's only request when it came). Before B finishes: the 5 of A's running when it arrived
    # (4 workers and the express thread), and at most one more on each of the 4 other threads (one started
    # after B and finishing sooner, though as long): at least 15 of 24 finish after B.
    assert a_after_b >= len(flood_ids) - 9, order
    # A's own later request waits behind all of A's backlog (FIFO within a tenant): it starts after a-23,
    # so only the 4 of A's that may still run beside it can finish after it.
    a_before_late = sum(1 for request_id in flood_ids if order.index(request_id) < order.index("a-late"))
    assert a_before_late >= len(flood_ids) - 4, order


def test_weights_three_to_one_share_the_workers_three_to_one(triton_piper) -> None:
    flood = Flood(triton_piper.grpc_url)
    try:
        for i in range(4):  # occupy every worker first, so the gold and silver requests below all wait
            flood.send(f"warm-{i}", tenant="warm")
        flood.wait_first_audio("warm-0")
        for i in range(16):
            flood.send(f"gold-{i}", tenant="gold", weight=3.0, text=SHORT_TEXT)
            flood.send(f"silver-{i}", tenant="silver", weight=1.0, text=SHORT_TEXT)
        order = flood.wait_all()
    finally:
        flood.close()
    both_waiting = [request_id.split("-")[0] for request_id in order if not request_id.startswith("warm")][:16]
    served = Counter(both_waiting)
    # While both have a backlog, served work follows the weights (FIFO would alternate: 8 and 8).
    assert 2.0 <= served["gold"] / max(served["silver"], 1) <= 5.0, (served, order)
    # Queue waits are exported by weight class, never by tenant (metrics are applied once a second).
    deadline = time.monotonic() + 30
    while _count(triton_piper.metrics_text(), "tts_engine_queue_wait_seconds_count", model="piper", weight="3") < 16:
        assert time.monotonic() < deadline, "queue waits for weight 3 never reached 16"
        time.sleep(0.25)
    assert "gold" not in triton_piper.metrics_text()


def test_requests_without_parameters_are_still_served(triton_piper) -> None:
    flood = Flood(triton_piper.grpc_url)
    try:
        flood.send("plain-0")
        flood.send("odd-0", tenant="x" * 500, weight=1e9)  # clamped by tts_contract.fairness, not refused
        assert sorted(flood.wait_all()) == ["odd-0", "plain-0"]
    finally:
        flood.close()


def _thread_nice_values(pid: int) -> dict[int, int]:
    """Each thread's nice value (field 19 of /proc/PID/task/TID/stat, counted after the command's ')')."""
    values = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            values[int(task.name)] = int(fields[16])
    return values


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread priorities from Linux's /proc")
def test_the_regular_workers_run_at_a_lower_cpu_priority_than_the_rest_of_the_model(triton_piper) -> None:
    flood = Flood(triton_piper.grpc_url)
    try:
        flood.send("warm-0", tenant="warm", text=SHORT_TEXT)
        assert flood.wait_all() == ["warm-0"]  # the pool's threads have started
    finally:
        flood.close()
    server_pid = triton_piper.server.process.pid
    stubs = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_piper_stub(p, server_pid)]
    assert len(stubs) == 1, stubs
    nice = _thread_nice_values(stubs[0])
    base = nice[stubs[0]]  # the stub's main thread
    # config.pbtxt: 4 regular workers, background_nice 10 (the express thread and the rest stay at base).
    assert sum(value == min(19, base + 10) for value in nice.values()) == 4, nice
    assert sum(value == base for value in nice.values()) >= 2, nice


def _is_piper_stub(proc: Path, server_pid: int) -> bool:
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == server_pid and "stub" in cmdline and "/piper/" in cmdline
