"""Rational-ratio polyphase resampling in numpy alone (the control plane carries no SciPy).

Same result as SciPy's `signal.resample_poly(x, up, down)` with its defaults: a linear-phase low-pass
FIR of 2*half_len + 1 taps (half_len = 10 * max(up, down)), windowed-sinc with a Kaiser window (beta 5),
cut off at the lower of the two Nyquist rates, normalised to unit DC gain and then scaled by `up`; the
signal is zero outside its ends; ceil(len(x) * up / down) output samples, output n centred on input
position n * down / up.

In formulas, with h the filter above (zero outside 0..2*half_len):

    y[n] = sum_j h[n*down + half_len - j*up] * x[j]

Only every `up`-th tap meets a real input sample, so each output is a dot product of K = ceil(taps / up)
consecutive inputs with one of `up` filter phases; the zero-stuffed signal is never built. Outputs
n = r, r + up, r + 2*up, ... share a phase and start `down` inputs apart, so each phase is one strided
window view times one phase vector: work is len(output) * K multiply-adds.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

KAISER_BETA = 5.0


@lru_cache(maxsize=64)
def _phases(up: int, down: int) -> tuple[np.ndarray, int]:
    """The filter split into `up` phases, each reversed so it lines up with a forward window of inputs.

    Row p holds h[p + (K-1)*up], ..., h[p + up], h[p]; returns (rows, half_len). Cached: a handful of rate
    pairs recur, and the filter costs more than resampling a short chunk.
    """
    max_rate = max(up, down)
    half_len = 10 * max_rate
    taps = 2 * half_len + 1
    m = np.arange(taps, dtype=np.float64) - half_len
    cutoff = 1.0 / max_rate  # relative to the Nyquist rate of the upsampled signal
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(taps, KAISER_BETA)
    h *= up / h.sum()
    k = -(-taps // up)
    padded = np.zeros(k * up)
    padded[:taps] = h
    # padded.reshape(k, up)[i, p] == h[p + i*up]; transpose to phases, reverse the tap order.
    rows = np.ascontiguousarray(padded.reshape(k, up).T[:, ::-1])
    rows.flags.writeable = False
    return rows, half_len


def output_length(n_in: int, up: int, down: int) -> int:
    """ceil(n_in * up / down) after reducing the ratio, as SciPy's resample_poly returns."""
    g = math.gcd(up, down)
    up, down = up // g, down // g
    return -(-n_in * up // down)


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample the 1-D signal `x` by up/down; float64 output (float64 arithmetic)."""
    if up < 1 or down < 1:
        raise ValueError("up and down must be >= 1")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("x must be one-dimensional")
    g = math.gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return x.copy()
    n_in = x.size
    n_out = output_length(n_in, up, down)
    if n_out == 0:
        return np.zeros(0)
    rows, half_len = _phases(up, down)
    k = rows.shape[1]
    # Output n reads inputs j0-K+1 .. j0 with j0 = (n*down + half_len) // up; pad with the zeros that lie
    # outside the signal so every window is in range. xp[i] == x[i - (K-1)].
    last_j0 = ((n_out - 1) * down + half_len) // up
    xp = np.zeros(k - 1 + max(n_in, last_j0 + 1))
    xp[k - 1 : k - 1 + n_in] = x
    windows = sliding_window_view(xp, k)  # windows[j0] == x[j0-K+1 .. j0]
    y = np.empty(n_out)
    for r in range(min(up, n_out)):
        t = r * down + half_len
        # Outputs r, r+up, ... : phase t % up, first window t // up, each next one `down` inputs later.
        count = (n_out - 1 - r) // up + 1
        start = t // up
        y[r::up] = windows[start : start + (count - 1) * down + 1 : down] @ rows[t % up]
    return y
