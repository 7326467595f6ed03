"""Windowed streaming vocoding of GPT latents with HiFi-GAN.

XTTS's HifiDecoder first resamples the latents with linear interpolations (x1/speed when speed is
not 1, x4 = code_stride/hop, x24000/22050) and then runs a convolutional generator that turns each
of those frames into 256 samples. The interpolations are cheap and local, so the engine computes
frames itself at their global positions, and runs only the generator on windows of whole frames:

- frame f of the whole utterance is computed exactly as `F.interpolate` would (same source index
  and weights), using only latents already generated; a frame is final once every latent it
  depends on exists (near the current end, the reference clamps at the last latent);
- a chunk vocodes frames [emitted - context, available) and emits samples of frames
  [emitted, available - lookahead): each emitted sample has `context` frames of true left context
  and `lookahead` frames of true right context, which cover HiFi-GAN's receptive field, so the
  streamed audio equals the whole utterance vocoded at once up to float noise;
- the first `crossfade` samples of every chunk after the first are blended with the previous
  window's own rendering of them (linear fade), which hides any residual seam should a vocoder's
  receptive field exceed the window.

Samples per latent: 256 per frame x 4 x 24000/22050 = 1114.56 on average; an utterance of T latents
is 256 * floor(floor(T / speed) * 4 * 24000 / 22050) samples long, exactly the reference's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

HOP = 256  # samples per frame out of the generator (upsample rates 8*8*2*2)


@dataclass(frozen=True)
class _Stage:
    """One linear interpolation (align_corners=False, given scale factor), as torch computes it."""

    scale: float

    def out_size(self, in_size: int) -> int:
        return int(math.floor(in_size * self.scale))

    def sources(self, j0: int, j1: int, in_size: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices i0, i1 and weight of i1 for outputs j0..j1-1; in_size None = the input is still growing.

        Computed in float32 exactly as torch's CPU kernel does (scale = 1/scale_factor, source index
        scale * (j + 0.5) - 0.5 clamped at 0), so frames match `F.interpolate` bit for bit in the index math.
        """
        if in_size is not None and self.out_size(in_size) == in_size:  # torch copies when sizes are equal
            same = np.arange(j0, j1, dtype=np.int64)
            return same, same, np.zeros(j1 - j0, dtype=np.float32)
        scale = np.float64(np.float32(1.0 / self.scale))
        j = np.arange(j0, j1, dtype=np.int64).astype(np.float32) + np.float32(0.5)
        # One rounding of scale * (j + 0.5) - 0.5, as the compiled kernel's fused multiply-add does.
        src = (scale * j.astype(np.float64) - 0.5).astype(np.float32)
        src = np.maximum(src, np.float32(0.0))
        i0 = np.floor(src).astype(np.int64)
        if in_size is not None:
            i0 = np.minimum(i0, in_size - 1)
        w = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0))
        i1 = i0 + 1
        if in_size is not None:
            i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
        return i0, i1, w

    def available(self, in_available: int) -> int:
        """How many leading outputs depend only on the first `in_available` inputs (input still growing)."""
        if in_available < 2:
            return 0
        if self.scale > 1.0 and in_available <= 1.0 / (self.scale - 1.0) + 1.0:
            return 0  # the final size could still make this stage an identity copy
        # Output j needs input floor(src(j)) + 1 <= in_available - 1, i.e. src(j) < in_available - 1.
        j = int(math.floor((in_available - 1 + 0.5) * self.scale - 0.5)) + 2
        while j > 0:
            i0, _, _ = self.sources(j - 1, j, None)
            if i0[0] + 1 <= in_available - 1:
                return j
            j -= 1
        return 0


class LatentFrames:
    """Global frame positions of the HifiDecoder's interpolation chain for one sentence."""

    def __init__(self, speed: float, stride_ratio: float, rate_ratio: float):
        stages = []
        length_scale = 1.0 / max(speed, 0.05)
        if length_scale != 1.0:
            stages.append(_Stage(length_scale))
        stages.append(_Stage(stride_ratio))
        if rate_ratio != 1.0:
            stages.append(_Stage(rate_ratio))
        self.stages = stages

    def total(self, n_latents: int) -> int:
        size = n_latents
        for stage in self.stages:
            size = stage.out_size(size)
        return size

    def available(self, n_latents: int) -> int:
        """Frames that are final while latents are still being generated."""
        size = n_latents
        for stage in self.stages:
            size = stage.available(size)
        return size

    def frames(self, latents: torch.Tensor, f0: int, f1: int, final: bool) -> torch.Tensor:
        """Frames f0..f1-1 as [D, f1-f0] from `latents` [T, D] (all latents of the sentence so far)."""
        sizes = [latents.shape[0]]
        for stage in self.stages:
            sizes.append(stage.out_size(sizes[-1]))
        # Walk back from the wanted frames to the latent range they need.
        plans = []
        lo, hi = f0, f1
        for k in range(len(self.stages) - 1, -1, -1):
            i0, i1, w = self.stages[k].sources(lo, hi, sizes[k] if final else None)
            plans.append((lo, i0, i1, w))
            lo, hi = int(i0.min()), int(i1.max()) + 1
        values = latents[lo:hi].float()
        base = lo
        for _out_lo, i0, i1, w in reversed(plans):
            a = torch.as_tensor(i0 - base, device=values.device)
            b = torch.as_tensor(i1 - base, device=values.device)
            w1 = torch.as_tensor(w, device=values.device)[:, None]
            w0 = 1.0 - w1
            values = values[a] * w0 + values[b] * w1
            base = _out_lo
        return values.t()


def reference_frames(latents: torch.Tensor, speed: float, stride_ratio: float, rate_ratio: float) -> torch.Tensor:
    """The HifiDecoder's own interpolation chain on all latents [T, D] -> [D, F] (for checks)."""
    z = latents.t()[None].float()
    length_scale = 1.0 / max(speed, 0.05)
    if length_scale != 1.0:
        z = F.interpolate(z, scale_factor=length_scale, mode="linear")
    z = F.interpolate(z, scale_factor=[stride_ratio], mode="linear")
    if rate_ratio != 1.0:
        z = F.interpolate(z, scale_factor=[rate_ratio], mode="linear")
    return z[0]


FrameDecoder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z [1, D, F], g [1, 512, 1]) -> [1, 1, F*256]


@dataclass(frozen=True)
class WindowConfig:
    """Window geometry in generator frames (256 samples). XTTS-v2's HiFi-GAN reaches about 12 frames to
    each side (measured: a change at one frame moves samples from -12.2 to +11.9 frames away), so 13
    frames of context and lookahead make windowed audio equal to whole-utterance audio (max diff ~3e-8).
    Every frame past that is vocoded twice per chunk for nothing: 13 rather than 16 cuts the frames a
    64-token stream vocodes by 5 %."""

    context_frames: int = 13
    lookahead_frames: int = 13
    crossfade_samples: int = 256


@dataclass
class Window:
    """One chunk's generator input, planned by `SentenceVocoder.plan` and finished by `SentenceVocoder.finish`.

    Frames [start, available) go through the generator; samples of [emitted, end) are emitted and
    those of [end, available) kept for the next chunk's crossfade. `pad_left` / `pad_right` say on
    which side frames may be added (to batch it with longer windows) without touching any sample
    that is used: a side may be padded only where the window already has a full context (left) or
    lookahead (right) of frames that are rendered but never emitted.
    """

    frames: torch.Tensor | None  # [D, available - start]; None: a final chunk with nothing left (empty audio)
    start: int
    end: int
    available: int
    pad_left: bool
    pad_right: bool

    @property
    def size(self) -> int:
        return self.available - self.start


class SentenceVocoder:
    """Streaming vocoder state of one sentence: call `chunk()` as latents grow, with final=True once.

    `chunk()` is `plan()`, one generator call, then `finish()`; the batched path (tts_engine.xtts.
    vocode_batch) runs the generator once for several sentences' windows between the two.
    """

    def __init__(self, frames: LatentFrames, decode: FrameDecoder, speaker: torch.Tensor, window: WindowConfig):
        self.frames = frames
        self.decode = decode
        self.speaker = speaker
        self.window = window
        self.emitted = 0  # frames already streamed
        self._tail: np.ndarray | None = None  # previous window's rendering of the samples after `emitted`

    def plan(self, latents: torch.Tensor, final: bool) -> Window | None:
        """The next window over `latents` (all of the sentence's latents so far); None when nothing is ready."""
        n = latents.shape[0]
        if final:
            available = end = self.frames.total(n)
        else:
            available = self.frames.available(n)
            end = available - self.window.lookahead_frames
        if end <= self.emitted:
            if not final:
                return None
            return Window(None, self.emitted, self.emitted, self.emitted, pad_left=False, pad_right=False)
        start = max(0, self.emitted - self.window.context_frames)
        z = self.frames.frames(latents, start, available, final)
        context, lookahead = self.window.context_frames, self.window.lookahead_frames
        return Window(z, start, end, available,
                      pad_left=context > 0 and self.emitted - start >= context,
                      pad_right=not final and lookahead > 0 and available - end >= lookahead)

    def chunk(self, latents: torch.Tensor, final: bool) -> np.ndarray | None:
        """Audio of the newly final frames (or everything left, when final); None when nothing is ready."""
        window = self.plan(latents, final)
        if window is None:
            return None
        if window.frames is None:
            return np.zeros(0, dtype=np.float32)
        wav = self.decode(window.frames[None].to(self.speaker.dtype), self.speaker)
        return self.finish(window, wav.reshape(-1).float().cpu().numpy())

    def finish(self, window: Window, wav: np.ndarray) -> np.ndarray:
        """Emit `window` given the generator's samples of its frames (`window.size` * HOP, float32)."""
        if window.frames is None:
            return np.zeros(0, dtype=np.float32)
        if wav.shape[0] != window.size * HOP:
            raise ValueError(f"the vocoder returned {wav.shape[0]} samples for {window.size} frames")
        start, end = window.start, window.end
        out = wav[(self.emitted - start) * HOP : (end - start) * HOP].copy()
        tail = self._tail
        fade = min(self.window.crossfade_samples, out.shape[0], 0 if tail is None else tail.shape[0])
        if tail is not None and fade > 0:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            out[:fade] = tail[:fade] * (1.0 - ramp) + out[:fade] * ramp
        self._tail = wav[(end - start) * HOP :].copy()
        self.emitted = end
        return out.astype(np.float32, copy=False)


def frame_decoder_for(vocoder) -> FrameDecoder | None:
    """The frame-level generator of a vocoder: HifiDecoder's `waveform_decoder`, or a `decode_frames` method.

    A vocoder that only maps latents to audio (no frame entry point) returns None: the engine then
    vocodes each sentence whole when it ends.
    """
    if hasattr(vocoder, "decode_frames"):
        return vocoder.decode_frames
    generator = getattr(vocoder, "waveform_decoder", None)
    if generator is not None:
        return lambda z, g: generator(z, g=g)
    return None
