"""Engine lifecycle: validation, cancellation, failure isolation, fallback vocoding, stats, conditioning."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from engine_helpers import voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.offline import CodeRequest
from tts_engine.xtts.types import EngineError, SynthesisParams

GOOD_TEXT = "hello world, this is a test."
QUICK = SynthesisParams(do_sample=False, max_new_tokens=6)


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


BAD_REQUESTS = [
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"language": "xx"}, "language"),
    ({"cond": np.zeros((31, 128), np.float32)}, "32 rows"),
    ({"cond": np.zeros((32, 64), np.float32)}, "shape"),
    ({"cond": np.full((32, 128), np.nan, np.float32)}, "NaN"),
    ({"speaker": np.zeros(511, np.float32)}, "512"),
    ({"params": SynthesisParams(temperature=0.0)}, "temperature"),
    ({"params": SynthesisParams(top_p=0.0)}, "top_p"),
    ({"params": SynthesisParams(speed=10.0)}, "speed"),
    ({"params": SynthesisParams(seed=-1)}, "seed"),
    ({"params": SynthesisParams(max_new_tokens=0)}, "max_new_tokens"),
    ({"params": SynthesisParams(top_k=-3)}, "top_k"),
    ({"params": {"temperature": 0.5}}, "SynthesisParams"),
]


def test_bad_requests_raise_clear_errors_and_the_engine_keeps_serving(running_engine):
    cond, speaker = voice(1)
    rejected_before = running_engine.stats.rejected
    for change, fragment in BAD_REQUESTS:
        args = {"text": GOOD_TEXT, "language": "en", "cond": cond, "speaker": speaker, "params": QUICK, **change}
        with pytest.raises(ValueError, match=fragment):
            running_engine.submit(args["text"], args["language"], args["cond"], args["speaker"], args["params"])
    assert running_engine.stats.rejected == rejected_before + len(BAD_REQUESTS)
    chunks = list(running_engine.submit(GOOD_TEXT, "en-US", cond, speaker, QUICK))
    assert chunks and chunks[-1].is_last


def test_submit_needs_a_running_engine(engine):
    cond, speaker = voice(1)
    with pytest.raises(EngineError):
        engine.submit(GOOD_TEXT, "en", cond, speaker, QUICK)


def test_cancel_frees_rows_at_once(running_engine):
    engine = running_engine
    cond, speaker = voice(6)
    slow = SynthesisParams(do_sample=False, first_chunk_tokens=1000)  # no audio before the end
    streams = [engine.submit(GOOD_TEXT, "en", cond, speaker, slow) for _ in range(engine.max_batch_size)]
    assert _wait_for(lambda: len(engine.batcher.rows) == engine.max_batch_size)
    steps_before = engine.stats.decode_steps
    for stream in streams:
        stream.cancel()
    for stream in streams:
        assert list(stream) == []  # the stream just ends
    assert _wait_for(lambda: not engine.batcher.rows)
    # The step in flight may finish; the rows are freed before the one after (cancels may straddle one step).
    assert engine.stats.decode_steps - steps_before <= 2
    again = [engine.submit(GOOD_TEXT, "en", cond, speaker, slow) for _ in range(engine.max_batch_size)]
    assert _wait_for(lambda: len(engine.batcher.rows) == engine.max_batch_size)
    for stream in again:
        stream.cancel()
    assert _wait_for(lambda: not engine.batcher.rows)
    assert engine.stats.snapshot()["requests_cancelled"] >= 2 * engine.max_batch_size


class _FailingVocoder:
    """HiFi-GAN that fails for speaker embeddings whose first value is huge (the 'bad request')."""

    def __init__(self, decoder):
        self.decoder = decoder

    def decode_frames(self, z, g):
        if g[0, 0, 0] > 100:
            raise RuntimeError("vocoder exploded")
        return self.decoder.waveform_decoder(z, g=g)

    def __call__(self, latents, g=None):
        return self.decoder(latents, g=g)


def test_vocoder_failure_fails_only_that_request(tiny_model):
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4, vocoder=_FailingVocoder(tiny_model.hifigan_decoder))
    cond, speaker = voice(2)
    poisoned = speaker.copy()
    poisoned[0] = 1000.0
    with engine:
        bad = engine.submit(GOOD_TEXT, "en", cond, poisoned, QUICK)
        good = engine.submit(GOOD_TEXT, "en", cond, speaker, QUICK)
        with pytest.raises(EngineError, match="vocoding failed"):
            list(bad)
        chunks = list(good)
        assert chunks[-1].is_last and sum(c.audio.size for c in chunks) > 0
        assert not engine.batcher.rows
        assert engine.stats.requests_failed == 1


def test_latent_only_vocoder_streams_whole_sentences(tiny_model):
    decoder = tiny_model.hifigan_decoder
    latent_only = lambda latents, g=None: decoder(latents, g=g)  # noqa: E731 - a bare callable is the point
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=2, vocoder=latent_only)
    cond, speaker = voice(6)
    params = SynthesisParams(do_sample=False, max_new_tokens=8, first_chunk_tokens=2, chunk_tokens=2)
    [result] = engine.generate_codes([CodeRequest(GOOD_TEXT, "en", cond, params)])
    with engine:
        chunks = list(engine.submit(GOOD_TEXT, "en", cond, speaker, params))
    assert len(chunks) == 1 and chunks[0].is_last
    with torch.inference_mode():
        whole = decoder(result.sentence_latents[0][None], g=torch.from_numpy(speaker).reshape(1, 512, 1))
    np.testing.assert_allclose(chunks[0].audio, whole.reshape(-1).numpy(), atol=1e-5)


def test_stats_count_steps_tokens_and_first_chunks(running_engine):
    before = running_engine.stats.snapshot()
    cond, speaker = voice(3)
    list(running_engine.submit(GOOD_TEXT, "en", cond, speaker, QUICK))
    after = running_engine.stats.snapshot()
    assert after["decode_steps"] > before["decode_steps"]
    assert after["tokens_generated"] > before["tokens_generated"]
    assert after["requests_completed"] == before["requests_completed"] + 1
    assert after["time_to_first_chunk_seconds"]["count"] == before["time_to_first_chunk_seconds"]["count"] + 1
    assert after["batch_size"]["count"] == after["decode_steps"]
    assert after["audio_seconds"] > before["audio_seconds"]
    assert after["active_requests"] == 0


def test_condition_from_audio_arrays(engine):
    t = np.arange(int(2.5 * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 140 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size))
    latent, speaker = engine.condition(audio.astype(np.float32), 16000)
    assert latent.shape == (32, engine.model_dim) and latent.dtype == np.float32
    assert speaker.shape == (512,) and speaker.dtype == np.float32
    assert np.isfinite(latent).all() and np.isfinite(speaker).all()
    again, _ = engine.condition(np.stack([audio, audio]).astype(np.float32), 16000)  # stereo averages to mono
    np.testing.assert_allclose(again, latent, atol=1e-5)
    with pytest.raises(ValueError, match="too short"):
        engine.condition(np.zeros(1000, np.float32), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        engine.condition(audio.astype(np.float32), 100)


def test_from_artifact_loads_and_generates(engine_artifact):
    engine = XttsEngine.from_artifact(engine_artifact, device="auto", max_batch_size=2)
    assert engine.device.type in ("cpu", "cuda")
    assert engine.manifest["format_version"] == 1
    [result] = engine.generate_codes([CodeRequest(GOOD_TEXT, "en", voice(1)[0], QUICK)])
    assert 0 < len(result.codes) <= 6
