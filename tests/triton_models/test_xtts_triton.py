"""The `xtts` model through a real tritonserver: parity with the engine, concurrency, cancellation, errors."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from xtts_client import TEXTS, AioStream, greedy_params, metric, text_input, xtts_inputs

from tts_engine.xtts.types import SAMPLE_RATE


def test_greedy_output_equals_the_in_process_engine(triton_server, xtts_engine, voice) -> None:
    served = triton_server.stream("xtts", xtts_inputs(TEXTS[0], voice))
    assert served.error is None, served.error
    assert len(served.chunks) >= 2  # streamed, not one blob
    assert all(int(chunk["SAMPLE_RATE"][0]) == SAMPLE_RATE for chunk in served.chunks)
    local = xtts_engine.synthesize(TEXTS[0], "en", *voice, greedy_params())
    audio = served.audio()
    assert audio.dtype == np.float32
    assert audio.size == local.size
    np.testing.assert_allclose(audio, local, atol=1e-3)


async def test_sixteen_concurrent_streams_complete_with_engine_lengths(triton_server, xtts_engine, voice) -> None:
    expected = {text: xtts_engine.synthesize(text, "en", *voice, greedy_params()).size for text in TEXTS}
    streams = [AioStream(triton_server.grpc_url, xtts_inputs(TEXTS[i % len(TEXTS)], voice)) for i in range(16)]
    await asyncio.wait_for(asyncio.gather(*(stream.run() for stream in streams)), timeout=300)
    for i, stream in enumerate(streams):
        assert stream.error is None, stream.error
        assert stream.final
        assert stream.audio().size == expected[TEXTS[i % len(TEXTS)]], f"stream {i}"


# Several sentences: each is vocoded on its own, so a stream lasts well past its first chunk even
# though the decode loop (which does not wait for the vocoder) may finish its tokens early.
LONG_TEXT = " ".join(f"sentence number {w} talks about the weather and the sea." for w in ("one", "two", "three",
                                                                                     "four", "five", "six"))


async def _start_long_streams(triton_server, voice, count: int, tokens: int) -> tuple[list[AioStream], list]:
    streams = [AioStream(triton_server.grpc_url, xtts_inputs(LONG_TEXT, voice, tokens=tokens, first_chunk=1, seed=i))
               for i in range(count)]
    tasks = [asyncio.create_task(stream.run()) for stream in streams]
    await asyncio.wait_for(asyncio.gather(*(stream.first_chunk.wait() for stream in streams)), timeout=120)
    return streams, tasks


async def _engine_idle(triton_server, before: str, cancelled: int) -> str:
    """Wait until the model has counted `cancelled` more cancellations and the engine holds no request."""
    deadline = time.monotonic() + 120  # a busy machine drains slowly
    while True:
        text = triton_server.metrics_text()
        seen = metric(text, "tts_requests_total", model="xtts", outcome="cancelled") - metric(
            before, "tts_requests_total", model="xtts", outcome="cancelled")
        running = metric(text, "tts_xtts_engine_requests", model="xtts", state="running")
        queued = metric(text, "tts_xtts_engine_requests", model="xtts", state="queued")
        if seen >= cancelled and running == 0 and queued == 0:
            return text
        assert time.monotonic() < deadline, f"cancelled {seen}/{cancelled}, running {running}, queued {queued}"
        await asyncio.sleep(0.25)


async def test_cancel_requests_free_the_rows_at_once(triton_server, voice) -> None:
    rows = triton_server.xtts_max_batch
    await asyncio.sleep(1.5)  # engine counters reach the metrics once a second: let earlier tests' land
    before = triton_server.metrics_text()
    # Requests with the model's whole token budget, which would hold every row for a while.
    streams, tasks = await _start_long_streams(triton_server, voice, rows, tokens=10_000)
    for stream in streams:
        cancel = triton_server.stream("xtts", {"CANCEL_REQUEST_ID": text_input(stream.request_id)})
        assert cancel.error is None and not cancel.chunks
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    assert all(stream.error is None and stream.final for stream in streams)  # ended cleanly, early
    await _engine_idle(triton_server, before, cancelled=rows)
    # Six sentences of up to 64 tokens each were asked for; far less audio was sent.
    full = 6 * 64 * 1114
    assert all(stream.audio().size < full / 2 for stream in streams)

    # A full batch of new requests runs at once.
    fresh = [AioStream(triton_server.grpc_url, xtts_inputs(TEXTS[1], voice, seed=i)) for i in range(rows)]
    await asyncio.wait_for(asyncio.gather(*(stream.run() for stream in fresh)), timeout=120)
    assert all(stream.error is None and stream.final and stream.chunks for stream in fresh)


def test_cancelling_an_unknown_request_is_harmless(triton_server) -> None:
    result = triton_server.stream("xtts", {"CANCEL_REQUEST_ID": text_input("no-such-request")})
    assert result.error is None and not result.chunks


async def test_server_keeps_serving_after_clients_disconnect(triton_server, voice) -> None:
    # Clients that drop their calls mid-stream (no cancel request): the server must stay up and serve.
    streams, tasks = await _start_long_streams(triton_server, voice, triton_server.xtts_max_batch // 2, tokens=8)
    for stream in streams:
        stream.disconnect()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    assert not any(stream.final for stream in streams)
    after = [AioStream(triton_server.grpc_url, xtts_inputs(TEXTS[2], voice, seed=i)) for i in range(4)]
    await asyncio.wait_for(asyncio.gather(*(stream.run() for stream in after)), timeout=180)
    assert all(stream.error is None and stream.final for stream in after)
    assert triton_server.server.process.poll() is None
    # Without a cancel request the orphaned requests run to their token bound, then free their rows.
    deadline = time.monotonic() + 60
    while True:
        text = triton_server.metrics_text()
        if metric(text, "tts_model_active_requests", model="xtts") == 0 and metric(
                text, "tts_xtts_engine_requests", model="xtts", state="running") == 0:
            break
        assert time.monotonic() < deadline, "orphaned requests never finished"
        await asyncio.sleep(0.25)


BAD_INPUTS = [
    ("empty text", {"TEXT": text_input("   ")}, "text"),
    ("unknown language", {"LANGUAGE": text_input("tlh")}, "unsupported language"),
    ("latent of the wrong width", {"GPT_COND_LATENT": np.zeros((32, 64), np.float32)}, "gpt_cond_latent"),
    ("latent with NaN", {"GPT_COND_LATENT": np.full((32, 128), np.nan, np.float32)}, "NaN"),
    ("short speaker embedding", {"SPEAKER_EMBEDDING": np.zeros(100, np.float32)}, "speaker_embedding"),
    ("temperature out of range", {"TEMPERATURE": np.array([50.0], np.float32)}, "TEMPERATURE"),
    ("top_p out of range", {"TOP_P": np.array([1.5], np.float32)}, "TOP_P"),
    ("speed out of range", {"SPEED": np.array([9.0], np.float32)}, "SPEED"),
    ("negative seed", {"SEED": np.array([-1], np.int64)}, "SEED"),
    ("zero tokens", {"MAX_NEW_TOKENS": np.array([0], np.int32)}, "MAX_NEW_TOKENS"),
]


@pytest.mark.parametrize(("case", "override", "message"), BAD_INPUTS, ids=[case for case, _, _ in BAD_INPUTS])
def test_bad_input_is_a_clear_error_and_the_model_keeps_serving(triton_server, voice, case, override,
                                                                message) -> None:
    bad = triton_server.stream("xtts", xtts_inputs(TEXTS[0], voice, **override))
    assert bad.error is not None, case
    assert message in bad.error, bad.error
    assert not bad.chunks


def test_missing_required_input_is_rejected(triton_server, voice) -> None:
    inputs = xtts_inputs(TEXTS[0], voice)
    del inputs["SPEAKER_EMBEDDING"]
    result = triton_server.stream("xtts", inputs)
    assert result.error is not None and "SPEAKER_EMBEDDING" in result.error


def test_good_request_after_bad_ones_succeeds(triton_server, voice) -> None:
    for _, override, _ in BAD_INPUTS[:3]:
        assert triton_server.stream("xtts", xtts_inputs(TEXTS[0], voice, **override)).error is not None
    good = triton_server.stream("xtts", xtts_inputs(TEXTS[2], voice, tokens=6))
    assert good.error is None and good.audio().size > 0


def test_metrics_show_custom_and_triton_counters(triton_server, voice, tiny_xtts_artifact) -> None:
    import json

    assert triton_server.stream("xtts", xtts_inputs(TEXTS[3], voice, tokens=6)).error is None
    version = json.loads((tiny_xtts_artifact / "manifest.json").read_text())["model_version"]
    # Engine counters are copied once a second; requests other tests left running on this shared
    # server (clients that hung up without a cancel run to their token bound) must drain to zero.
    deadline = time.monotonic() + 120  # a busy machine drains slowly
    while True:
        text = triton_server.metrics_text()
        if (metric(text, "tts_xtts_tokens_generated_total", model="xtts") > 0
                and metric(text, "tts_requests_total", model="xtts", outcome="ok") >= 1
                and metric(text, "tts_model_active_requests", model="xtts") == 0):
            break
        assert time.monotonic() < deadline, "counters never appeared, or active requests never drained to 0"
        time.sleep(0.25)
    assert f'tts_model_info{{model="xtts",model_version="{version}",test_weights="true"}} 1' in text
    assert metric(text, "tts_xtts_time_to_first_chunk_seconds_count", model="xtts") >= 1
    assert metric(text, "tts_xtts_decode_batch_size_count", model="xtts") >= 1
    assert metric(text, "tts_xtts_vocode_batch_size_count", model="xtts") >= 1
    assert metric(text, "tts_xtts_decode_steps_total", model="xtts") >= 1
    assert "tts_xtts_tokens_per_second{" in text
    assert metric(text, "tts_model_active_requests", model="xtts") == 0
    assert metric(text, "tts_requests_total", model="xtts", outcome="ok") >= 1
    assert metric(text, "nv_inference_request_success", model="xtts") >= 1
    assert "nv_inference_queue_duration_us{" in text
