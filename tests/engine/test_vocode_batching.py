"""Vocoding batched across requests: several requests' windows in one HiFi-GAN call give the audio each
window gives alone (tiny model's full-width HiFi-GAN, fp32 CPU, max abs diff < 1e-4), with unequal
window lengths (padded left, padded right, never padded), final windows and several speeds; a failure
in one row fails that request only; a request cancelled while its batch is vocoded ends, and the others'
audio is that of the one-at-a-time engine."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from engine_helpers import voice

from tts_engine.xtts.engine import XttsEngine
from tts_engine.xtts.types import EngineError, SynthesisParams
from tts_engine.xtts.vocode_batch import Planned, group_windows, vocode_planned
from tts_engine.xtts.vocode_worker import default_vocode_batch, parse_vocode_batch
from tts_engine.xtts.vocoding import LatentFrames, SentenceVocoder, WindowConfig

TOLERANCE = 1e-4
FAIL_MARK = 7.0  # a speaker embedding filled with this makes the wrapped decoder raise
# name: (speed, latents at each non-final chunk, latents at the final one). Window sizes in frames
# (round 1..4): A 67 131 131 54, B 63 126 126 50, C 67 117 63, D 52 (one final window from frame 0:
# cannot be padded), E (speed 0.8) 80 135 119. So round 1 pads B on the right (a first window),
# rounds 2-4 pad on the left (non-final and final windows), and D and E get calls of their own.
SENTENCES = {
    "A": (1.0, [16, 40, 64], 70),
    "B": (1.0, [15, 38, 61], 66),
    "C": (1.0, [16, 37], 45),
    "D": (1.0, [], 12),
    "E": (0.8, [16, 36], 52),
}


def _ratios(model) -> tuple[float, float]:
    hifi = model.hifigan_decoder
    return hifi.ar_mel_length_compression / hifi.output_hop_length, hifi.output_sample_rate / hifi.input_sample_rate


def _vocoders(model, decode, fail: str | None = None) -> dict[str, SentenceVocoder]:
    stride, rate = _ratios(model)
    out = {}
    for k, (name, (speed, _, _)) in enumerate(SENTENCES.items()):
        speaker = torch.from_numpy(voice(10 + k)[1]).reshape(1, 512, 1)
        if name == fail:
            speaker = torch.full((1, 512, 1), FAIL_MARK)
        out[name] = SentenceVocoder(LatentFrames(speed, stride, rate), decode, speaker, WindowConfig())
    return out


def _latents(model) -> dict[str, torch.Tensor]:
    dim = model.hifigan_decoder.waveform_decoder.conv_pre.in_channels
    gen = torch.Generator().manual_seed(5)
    return {name: torch.randn(total, dim, generator=gen) for name, (_, _, total) in SENTENCES.items()}


def _rounds() -> list[dict[str, tuple[int, bool]]]:
    """Per round, each sentence still going: (latents so far, final)."""
    steps = {name: [(n, False) for n in chunks] + [(total, True)] for name, (_, chunks, total) in SENTENCES.items()}
    return [{name: s[r] for name, s in steps.items() if r < len(s)} for r in range(max(map(len, steps.values())))]


class RecordingDecoder:
    """The tiny model's HiFi-GAN generator, recording call shapes; rows with FAIL_MARK speakers make it raise."""

    def __init__(self, model):
        self.generator = model.hifigan_decoder.waveform_decoder
        self.calls: list[tuple[int, int]] = []

    def __call__(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.calls.append((z.shape[0], z.shape[2]))
        if bool((g == FAIL_MARK).flatten(1).all(dim=1).any()):
            raise RuntimeError("vocoder exploded")
        with torch.inference_mode():
            return self.generator(z, g=g)


def _alone(model, fail: str | None = None) -> dict[str, list[np.ndarray | Exception]]:
    vocoders, latents = _vocoders(model, RecordingDecoder(model), fail), _latents(model)
    out: dict[str, list[np.ndarray | Exception]] = {name: [] for name in SENTENCES}
    for chunks in _rounds():
        for name, (n, final) in chunks.items():
            try:
                out[name].append(vocoders[name].chunk(latents[name][:n], final=final))
            except RuntimeError as exc:
                out[name].append(exc)
    return out


def test_batched_windows_equal_windows_vocoded_alone(tiny_model):
    decoder = RecordingDecoder(tiny_model)
    vocoders, latents = _vocoders(tiny_model, decoder), _latents(tiny_model)
    batched: dict[str, list] = {name: [] for name in SENTENCES}
    padded_groups = 0
    for chunks in _rounds():
        names = list(chunks)
        planned = [Planned(vocoders[name], vocoders[name].plan(latents[name][: chunks[name][0]], chunks[name][1]))
                   for name in names]
        for group in group_windows(planned, 8):
            padded_groups += len({planned[i].window.size for i in group}) > 1
        outcomes: dict[int, object] = {}
        vocode_planned(planned, outcomes.__setitem__, 8)
        for i, name in enumerate(names):
            batched[name].append(outcomes[i])
    expected = _alone(tiny_model)
    assert max(b for b, _ in decoder.calls) >= 3 and padded_groups >= 3
    assert len(decoder.calls) < sum(len(chunks) for chunks in _rounds())  # fewer calls than windows
    for name in SENTENCES:
        assert len(batched[name]) == len(expected[name])
        for got, want in zip(batched[name], expected[name], strict=True):
            assert isinstance(got, np.ndarray) and got.shape == want.shape
            assert np.max(np.abs(got - want), initial=0.0) < TOLERANCE, name


def test_unpaddable_windows_and_limit_split_groups(tiny_model):
    vocoders, latents = _vocoders(tiny_model, RecordingDecoder(tiny_model)), _latents(tiny_model)
    first = {name: Planned(v, v.plan(latents[name][: (SENTENCES[name][1] or [SENTENCES[name][2]])[0]],
                                      not SENTENCES[name][1]))
             for name, v in vocoders.items()}
    names = list(first)
    groups = [[names[i] for i in group] for group in group_windows(list(first.values()), 8)]
    assert groups == [["A", "B", "C"], ["D"], ["E"]]  # D: final from frame 0; E: too much padding
    groups = [[names[i] for i in group] for group in group_windows(list(first.values()), 2)]
    assert groups == [["A", "B"], ["C"], ["D"], ["E"]]


def test_a_failing_row_fails_only_its_own_window(tiny_model):
    decoder = RecordingDecoder(tiny_model)
    vocoders, latents = _vocoders(tiny_model, decoder, fail="B"), _latents(tiny_model)
    [first_round, *_] = _rounds()
    names = list(first_round)
    planned = [Planned(vocoders[n], vocoders[n].plan(latents[n][: first_round[n][0]], first_round[n][1]))
               for n in names]
    outcomes: dict[int, object] = {}
    sizes = vocode_planned(planned, outcomes.__setitem__, 8)
    assert sizes[0] == 3 and sizes[1:4] == [1, 1, 1]  # the failed call of A, B, C is retried one by one
    expected = _alone(tiny_model, fail="B")
    for i, name in enumerate(names):
        if name == "B":
            assert isinstance(outcomes[i], RuntimeError)
        else:
            assert np.max(np.abs(outcomes[i] - expected[name][0]), initial=0.0) < TOLERANCE


@pytest.mark.parametrize("text, expected", [("auto", None), ("", None), (None, None), (" AUTO ", None), ("1", 1),
                                            ("16", 16)])
def test_vocode_batch_setting(text, expected):
    assert parse_vocode_batch(text) == expected


@pytest.mark.parametrize("text", ["0", "-2", "eight", "2.5"])
def test_bad_vocode_batch_setting_is_refused(text):
    with pytest.raises(ValueError):
        parse_vocode_batch(text)


def test_auto_batches_on_a_gpu_only():
    assert default_vocode_batch(torch.device("cuda", 0)) == 8
    assert default_vocode_batch(torch.device("cpu")) == 1


# -- through the engine ---------------------------------------------------------------------------

PARAMS = SynthesisParams(do_sample=False, max_new_tokens=40, first_chunk_tokens=4, chunk_tokens=8)
TEXT = "hello world, this is a test."


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


class GatedDecoder:
    """Holds the vocoder thread in its first call until released, so the next call batches everyone."""

    def __init__(self, inner, on_batch=None):
        self.inner, self.on_batch = inner, on_batch
        self.release = threading.Event()
        self.calls: list[int] = []
        self.failed_in_batch = False

    def __call__(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.calls.append(z.shape[0])
        if len(self.calls) == 1:
            assert self.release.wait(60)
        if z.shape[0] > 1 and self.on_batch is not None:
            self.on_batch, on_batch = None, self.on_batch
            on_batch()
        if bool((g == FAIL_MARK).flatten(1).all(dim=1).any()):
            self.failed_in_batch |= z.shape[0] > 1
            raise RuntimeError("vocoder exploded")
        return self.inner(z, g)


def _submit_after_a_leader(engine: XttsEngine, gate: GatedDecoder, voices: dict, streams: dict) -> None:
    """Submit the first voice, wait until the vocoder thread holds its first window, then submit the rest."""
    names = list(voices)
    streams[names[0]] = engine.submit(TEXT, "en", *voices[names[0]], PARAMS)
    _wait(lambda: len(gate.calls) == 1)
    for name in names[1:]:
        streams[name] = engine.submit(TEXT, "en", *voices[name], PARAMS)
    _wait(lambda: engine.worker.waiting_jobs >= len(names))  # everyone's next window is waiting
    gate.release.set()


def _audio(stream) -> np.ndarray:
    return np.concatenate([c.audio for c in stream])


def test_engine_batches_and_a_request_cancelled_mid_batch_ends_alone(tiny_model):
    voices = {seed: voice(seed) for seed in (1, 2, 3)}
    alone = XttsEngine(tiny_model, device="cpu", max_batch_size=4, vocode_batch=1)
    with alone:
        expected = {seed: _audio(alone.submit(TEXT, "en", *voices[seed], PARAMS)) for seed in (1, 3)}
    assert alone.stats.snapshot()["vocode_batch_size"]["buckets"][1] > 0
    assert alone.stats.snapshot()["vocode_batch_size"]["sum"] == alone.stats.snapshot()["vocode_batch_size"]["count"]

    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4, vocode_batch=8)
    streams: dict = {}
    gate = GatedDecoder(engine.frame_decoder, on_batch=lambda: streams[2].cancel())
    engine.frame_decoder = gate
    with engine:
        _submit_after_a_leader(engine, gate, voices, streams)
        got = {seed: list(stream) for seed, stream in streams.items()}
        _wait(lambda: not engine.batcher.rows and engine.worker.backlog == 0)
    assert max(gate.calls) >= 2
    for seed in (1, 3):
        assert [c.index for c in got[seed]] == list(range(len(got[seed])))
        assert got[seed][-1].is_last
        audio = np.concatenate([c.audio for c in got[seed]])
        assert audio.shape == expected[seed].shape
        assert np.max(np.abs(audio - expected[seed])) < TOLERANCE
    assert not any(c.is_last for c in got[2])  # ended by the cancel, not completed
    snapshot = engine.stats.snapshot()
    assert (snapshot["requests_cancelled"], snapshot["requests_completed"]) == (1, 2)
    assert snapshot["vocode_batch_size"]["sum"] > snapshot["vocode_batch_size"]["count"]


def test_engine_a_failing_request_in_a_batch_fails_alone(tiny_model):
    cond, speaker = voice(1)
    voices = {"lead": voice(2), "bad": (cond, np.full(512, FAIL_MARK, dtype=np.float32)), "good": voice(3)}
    engine = XttsEngine(tiny_model, device="cpu", max_batch_size=4, vocode_batch=8)
    gate = GatedDecoder(engine.frame_decoder)
    engine.frame_decoder = gate
    with engine:
        streams: dict = {}
        _submit_after_a_leader(engine, gate, voices, streams)
        with pytest.raises(EngineError, match="vocoding failed"):
            list(streams["bad"])
        assert _audio(streams["lead"]).size > 0 and _audio(streams["good"]).size > 0
        _wait(lambda: not engine.batcher.rows)
    assert gate.failed_in_batch
    snapshot = engine.stats.snapshot()
    assert (snapshot["requests_failed"], snapshot["requests_completed"]) == (1, 2)
