"""The `xtts_condition` model through a real tritonserver: shapes, dynamic batching, bad audio."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from xtts_client import metric


def condition(grpc_url: str, audio: np.ndarray, rate: int):
    """(latent, speaker) or the error message, via a plain gRPC infer."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(grpc_url)
    samples = grpcclient.InferInput("AUDIO", [1, audio.size], "FP32")
    samples.set_data_from_numpy(np.ascontiguousarray(audio, dtype=np.float32)[None])
    sample_rate = grpcclient.InferInput("SAMPLE_RATE", [1, 1], "INT32")
    sample_rate.set_data_from_numpy(np.array([[rate]], dtype=np.int32))
    try:
        result = client.infer("xtts_condition", [samples, sample_rate], client_timeout=120)
    except InferenceServerException as error:
        return str(error)
    finally:
        client.close()
    return result.as_numpy("GPT_COND_LATENT")[0], result.as_numpy("SPEAKER_EMBEDDING")[0]


def test_four_concurrent_requests_are_batched_and_shaped(triton_server, reference_audio, xtts_engine) -> None:
    audio, rate = reference_audio
    # Four different lengths: ragged requests still share a batch.
    clips = [audio[: int(rate * seconds)] for seconds in (1.5, 2.0, 2.5, 3.0)]
    before = triton_server.metrics_text()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda clip: condition(triton_server.grpc_url, clip, rate), clips))
    for clip, result in zip(clips, results, strict=True):
        assert not isinstance(result, str), result
        latent, speaker = result
        assert latent.shape == (32, xtts_engine.model_dim) and latent.dtype == np.float32
        assert speaker.shape == (512,) and speaker.dtype == np.float32
        local_latent, local_speaker = xtts_engine.condition(clip, rate)
        np.testing.assert_allclose(latent, local_latent, atol=1e-3)
        np.testing.assert_allclose(speaker, local_speaker, atol=1e-3)
    after = triton_server.metrics_text()
    inferences = metric(after, "nv_inference_count", model="xtts_condition") - metric(
        before, "nv_inference_count", model="xtts_condition")
    executions = metric(after, "nv_inference_exec_count", model="xtts_condition") - metric(
        before, "nv_inference_exec_count", model="xtts_condition")
    assert inferences == 4
    assert executions < 4  # at least two requests shared one execute()


@pytest.mark.parametrize(
    ("seconds", "value", "message"),
    [(0.5, 0.1, "must be 1-60 s long"), (61.0, 0.1, "must be 1-60 s long"), (2.0, np.nan, "NaN")],
    ids=["too short", "too long", "NaN"],
)
def test_bad_reference_audio_is_rejected(triton_server, reference_audio, seconds, value, message) -> None:
    rate = 16000
    bad = np.full(int(rate * seconds), value, dtype=np.float32)
    result = condition(triton_server.grpc_url, bad, rate)
    assert isinstance(result, str) and message in result, result
    audio, good_rate = reference_audio
    assert not isinstance(condition(triton_server.grpc_url, audio, good_rate), str)
