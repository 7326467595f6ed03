"""Pipelined vocoding: the vocoder thread merges chunks it falls behind on without changing the audio,
fails only the request whose vocoding failed, and leaves nothing behind on cancel or stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from engine_helpers import voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.offline import CodeRequest
from tts_engine.xtts.types import EngineError, SynthesisParams

PARAMS = SynthesisParams(do_sample=False, max_new_tokens=40, first_chunk_tokens=4, chunk_tokens=4)
TEXT = "hello world, this is a test."
FAIL_MARK = 7.0  # a speaker embedding filled with this makes the wrapped decoder raise


def _wrap(engine: XttsEngine, delay: float = 0.0) -> None:
    inner = engine.frame_decoder

    def decode(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if bool((g == FAIL_MARK).flatten(1).all(dim=1).any()):  # any row of a batched call
            raise RuntimeError("vocoder exploded")
        time.sleep(delay)
        return inner(z, g)

    engine.frame_decoder = decode


def _whole(engine: XttsEngine, seed: int) -> np.ndarray:
    cond, speaker = voice(seed)
    [result] = engine.generate_codes([CodeRequest(TEXT, "en", cond, PARAMS)])
    return np.concatenate([engine.vocode(latents, speaker) for latents in result.sentence_latents])


@pytest.mark.parametrize("threads", [1, 3])
def test_a_slow_vocoder_merges_chunks_and_the_audio_is_unchanged(tiny_model, threads):
    # With several vocoder threads, requests are vocoded at once but each one's chunks stay in order.
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4, vocoder_threads=threads)
    expected = {seed: _whole(engine, seed) for seed in (1, 2, 3)}
    _wrap(engine, delay=0.05)  # far slower than the tiny GPT: due chunks pile up
    with engine:
        streams = {seed: engine.submit(TEXT, "en", *voice(seed), PARAMS) for seed in (1, 2, 3)}
        chunks = {seed: list(stream) for seed, stream in streams.items()}
        assert engine.worker.merged > 0
        assert engine.worker.backlog == 0
    for seed, got in chunks.items():
        assert [c.index for c in got] == list(range(len(got)))
        assert [c.is_last for c in got] == [False] * (len(got) - 1) + [True]
        audio = np.concatenate([c.audio for c in got])
        assert audio.shape == expected[seed].shape
        assert np.max(np.abs(audio - expected[seed])) < 1e-4
    # Merging means fewer, longer chunks than the inline schedule (40 tokens / 4 = 10 due points).
    assert min(len(got) for got in chunks.values()) < 10


def test_a_vocoder_failure_fails_that_request_only(tiny_model):
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4)
    _wrap(engine)
    cond, speaker = voice(1)
    with engine:
        bad = engine.submit(TEXT, "en", cond, np.full(512, FAIL_MARK, dtype=np.float32), PARAMS)
        good = engine.submit(TEXT, "en", cond, speaker, PARAMS)
        with pytest.raises(EngineError, match="vocoding failed"):
            list(bad)
        assert np.concatenate([c.audio for c in good]).size > 0
        again = engine.submit(TEXT, "en", cond, speaker, PARAMS)  # the engine keeps serving
        assert np.concatenate([c.audio for c in again]).size > 0
        _wait(lambda: not engine.batcher.rows)
    snapshot = engine.stats.snapshot()
    assert (snapshot["requests_failed"], snapshot["requests_completed"]) == (1, 2)


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


LONG_TEXT = " ".join(f"sentence number {w} talks about the weather and the sea." for w in ("one", "two", "three",
                                                                                     "four", "five", "six"))


def test_cancel_reaches_a_request_whose_decoding_is_over(tiny_model):
    """Decoding ends long before the vocoder does: the cancel must stop the vocoder thread's work too."""
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4)
    inner, calls, gate = engine.frame_decoder, [], threading.Event()

    def gated(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 2:
            assert gate.wait(10)
        return inner(z, g)

    engine.frame_decoder = gated
    with engine:
        stream = engine.submit(LONG_TEXT, "en", *voice(1), PARAMS)  # several sentences: segments cannot merge
        next(stream)  # first chunk out; the vocoder thread now waits inside its second call
        _wait(lambda: len(calls) == 2 and not engine.batcher.rows)  # every sentence decoded
        assert engine.worker.backlog > 0
        stream.cancel()
        gate.set()
        list(stream)  # ends
        _wait(lambda: engine.worker.backlog == 0)
    assert len(calls) == 2  # nothing vocoded after the cancel
    snapshot = engine.stats.snapshot()
    assert (snapshot["requests_cancelled"], snapshot["requests_completed"]) == (1, 0)


def test_stop_fails_streams_still_running(tiny_model):
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4)
    step = engine.batcher.step
    stopping = threading.Event()
    steps = 0

    def gated_step():
        # A few steps make the first chunk (4 tokens); then the request makes no progress until the stop
        # is under way, so it is still running when the engine stops however fast or slow this machine is.
        nonlocal steps
        steps += 1
        if steps > 6:
            stopping.wait(30)
            return [], []
        return step()

    def stop():
        stopping.set()
        engine.stop()

    engine.batcher.step = gated_step
    long = SynthesisParams(do_sample=False, max_new_tokens=400, first_chunk_tokens=4, chunk_tokens=4)
    engine.start()
    running = engine.submit(TEXT, "en", *voice(2), long)
    next(running)
    stopper = threading.Thread(target=stop)
    stopper.start()
    with pytest.raises(EngineError, match="engine stopped"):
        list(running)  # ends with the error, never hangs
    stopper.join(15)
    assert not stopper.is_alive()
    assert engine.worker.backlog == 0 and not engine.batcher.rows
    assert engine.stats.snapshot()["requests_failed"] == 1
