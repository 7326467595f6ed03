"""The numpy polyphase resampler against SciPy's resample_poly (the reference; SciPy is a test dependency only)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.signal import resample_poly as scipy_resample_poly

from control_plane.services import audio as A
from control_plane.services.resample import output_length, resample_poly

RATES = (8000, 16000, 22050, 24000, 44100, 48000)
RATE_PAIRS = list(itertools.permutations(RATES, 2))
# Lengths: empty, one sample, shorter than the filter's reach, and long (several seconds at 8 kHz).
LENGTHS = (0, 1, 2, 3, 17, 441, 2000, 40001)
# The pitch shift resamples by 100/num with num = round(factor * 100).
PITCH_NUMS = (50, 67, 75, 89, 99, 101, 110, 125, 133, 150, 171, 200)


def _ratio(src: int, dst: int) -> tuple[int, int]:
    g = math.gcd(src, dst)
    return dst // g, src // g


def _check(x: np.ndarray, up: int, down: int) -> None:
    got = resample_poly(x, up, down)
    assert got.size == output_length(x.size, up, down)
    if x.size == 0:
        assert got.size == 0
        return
    want = scipy_resample_poly(x.astype(np.float64), up, down)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < 1e-5


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_matches_scipy_for_every_service_rate_pair(src, dst):
    rng = np.random.default_rng(src * 7 + dst)
    up, down = _ratio(src, dst)
    for n in LENGTHS:
        _check(rng.uniform(-1, 1, n).astype(np.float32), up, down)


@pytest.mark.parametrize("num", PITCH_NUMS)
def test_matches_scipy_for_pitch_shift_ratios(num):
    rng = np.random.default_rng(num)
    for n in LENGTHS:
        _check(rng.uniform(-1, 1, n).astype(np.float32), 100, num)


def test_edge_signals_match_scipy():
    up, down = _ratio(22050, 24000)
    _check(np.ones(5000, np.float32), up, down)  # DC: the edges ring, the middle keeps unit gain
    impulse = np.zeros(999)
    impulse[500] = 1.0
    _check(impulse, up, down)
    _check(np.zeros(300), 1, 3)
    t = np.arange(48000) / 48000
    _check(np.sin(2 * np.pi * 7000 * t), 1, 6)  # above the 4 kHz output Nyquist: filtered out like SciPy


def test_unreduced_ratio_and_identity():
    x = np.random.default_rng(1).uniform(-1, 1, 1234)
    assert np.array_equal(resample_poly(x, 480, 160), resample_poly(x, 3, 1))
    _check(x, 480, 160)
    same = resample_poly(x, 7, 7)
    assert np.array_equal(same, x) and same is not x


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        resample_poly(np.zeros(4), 0, 1)
    with pytest.raises(ValueError):
        resample_poly(np.zeros((2, 2)), 1, 2)


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_service_resample_matches_scipy(src, dst):
    x = np.random.default_rng(3).uniform(-1, 1, 5000).astype(np.float32)
    y = A.resample(x, src, dst)
    want = scipy_resample_poly(x, *_ratio(src, dst))
    assert y.dtype == np.float32 and y.shape == want.shape
    assert np.max(np.abs(y - want)) < 1e-5


@pytest.mark.parametrize(("src", "dst"), [(44100, 8000), (8000, 44100), (48000, 22050), (16000, 24000)])
def test_streaming_resampler_equals_scipy_on_the_whole_signal(src, dst):
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.5, 0.5, 20000).astype(np.float32)
    r = A.StreamingResampler(src, dst)
    parts, i = [], 0
    for n in rng.integers(1, 2500, 40):
        parts.append(r.process(x[i : i + n]))
        i += int(n)
    parts.append(r.process(x[i:], final=True))
    y = np.concatenate(parts)
    want = scipy_resample_poly(x, *_ratio(src, dst))
    assert y.shape == want.shape
    assert np.max(np.abs(y - want)) < 1e-5
