"""The `xtts` model reads each request's tenant and weight (Triton request parameters) through a real tritonserver."""

from __future__ import annotations

import queue
import time

import numpy as np
from xtts_client import TEXTS, metric, xtts_inputs

from tests.conftest import make_inputs

TIMEOUT_S = 120.0


def _stream_with_parameters(url: str, inputs: dict[str, np.ndarray], parameters: dict) -> np.ndarray:
    import tritonclient.grpc as grpcclient

    events: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    client.start_stream(callback=lambda result=None, error=None: events.put((result, error)))
    audio = []
    try:
        client.async_stream_infer("xtts", make_inputs(inputs, grpcclient), enable_empty_final_response=True,
                                  parameters=parameters)
        while True:
            result, error = events.get(timeout=TIMEOUT_S)
            assert error is None, error
            response = result.get_response()
            if response.outputs:
                audio.append(result.as_numpy("AUDIO"))
            if response.parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
        client.close()
    return np.concatenate(audio)


def test_a_request_with_a_share_is_served_as_before_and_its_queue_wait_is_counted(triton_server, voice) -> None:
    plain = triton_server.stream("xtts", xtts_inputs(TEXTS[1], voice))
    assert plain.error is None, plain.error
    shared = _stream_with_parameters(triton_server.grpc_url, xtts_inputs(TEXTS[1], voice),
                                     {"tenant": "acme", "weight": 2.5})
    np.testing.assert_allclose(shared, plain.audio(), atol=1e-3)  # the share orders requests, never changes audio
    deadline = time.monotonic() + 30  # metrics are applied once a second
    while metric(triton_server.metrics_text(), "tts_engine_queue_wait_seconds_count", model="xtts", weight="2.5") < 1:
        assert time.monotonic() < deadline, "no queue wait recorded for weight 2.5"
        time.sleep(0.25)
