"""Piper's fair queue through a real tritonserver: tenants and weights ride as gRPC request parameters.

Order, not time: each test floods the model's workers over one gRPC stream and reads the order in
which requests finish, which FIFO and fair queuing make very different.
"""

from __future__ import annotations

import queue
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

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
    # next free worker. Before B finishes: the 4 of A's running when it arrived, and at most one more on
    # each of the 3 other workers (one started after B and finishing sooner, though as long): at least 17
    # of 24 finish after B.
    assert a_after_b >= len(flood_ids) - 7, order
    # A's own later request waits behind all of A's backlog (FIFO within a tenant): it starts after a-23,
    # so only the 3 of A's that may still run beside it can finish after it.
    a_before_late = sum(1 for request_id in flood_ids if order.index(request_id) < order.index("a-late"))
    assert a_before_late >= len(flood_ids) - 3, order


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
