"""Several requests' vocoder windows through HiFi-GAN in one call.

Why: a streaming window is small (about 130 frames of 1024 channels at the default chunking), so
one HiFi-GAN call per window leaves a GPU mostly idle and pays a kernel-launch sequence per
layer for little work. B windows stacked into one [B, D, F] call cost little more than one. On a
CPU the gain is smaller (fewer dispatch round trips, larger convolutions per call).

Exactness: the generator treats batch rows independently (no normalisation across rows, per-row
speaker embedding), so a row's samples depend only on its own frames and speaker. Windows of
unequal length are padded with zero frames to the longest of their group, on a side where the
samples next to the edge are rendered but never used:

- left, when the window starts with a full `context_frames` of context, whose samples are not
  emitted (not a sentence's first window, whose first frame is the start of the audio);
- right, when it ends with a full `lookahead_frames` of lookahead (not a final window, whose last
  frame is the end of the audio).

Padding changes samples only within HiFi-GAN's receptive field of the padded edge, the reach a
window's own edge already has and which the context and lookahead cover; so a padded row equals
the window vocoded alone up to float noise (the batched-vs-alone test checks it). A window that
can pad on neither side joins only groups whose longest window is its own size. A group's padding
is capped (MAX_PAD_FRACTION) so that a window merged after a backlog does not make many short
ones pay for its length.

Error isolation: a failed batched call is retried one window at a time, so only the window that
fails on its own fails its request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tts_engine.xtts.vocoding import HOP, SentenceVocoder, Window

MAX_PAD_FRACTION = 0.125  # a row may be padded by at most this share of its group's longest window

Outcome = np.ndarray | None | BaseException  # the chunk's audio, None (nothing ready), or its own failure
Done = Callable[[int, Outcome], None]


@dataclass
class Planned:
    """One request's next window, planned by its SentenceVocoder (window None: nothing is ready)."""

    vocoder: SentenceVocoder
    window: Window | None


def _key(item: Planned) -> tuple:
    speaker = item.vocoder.speaker
    return id(item.vocoder.decode), speaker.dtype, speaker.device


def _fits(items: Sequence[Planned], members: list[int]) -> bool:
    windows = [items[i].window for i in members]
    longest = max(w.size for w in windows if w is not None)
    allowed = int(longest * MAX_PAD_FRACTION)
    for w in windows:
        assert w is not None
        if w.size != longest and not ((w.pad_left or w.pad_right) and longest - w.size <= allowed):
            return False
    return True


def group_windows(items: Sequence[Planned], limit: int) -> list[list[int]]:
    """Indices of `items` with frames to vocode, in groups that can share one generator call.

    Groups keep the items' order (the caller's priority), and are listed by their first member:
    the most urgent window's call runs first.
    """
    groups: list[list[int]] = []
    for i, item in enumerate(items):
        if item.window is None or item.window.frames is None:
            continue
        for group in groups:
            if len(group) < limit and _key(items[group[0]]) == _key(item) and _fits(items, [*group, i]):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def decode_group(items: Sequence[Planned]) -> list[np.ndarray]:
    """One generator call for windows sharing a decoder; each one's samples (window.size * HOP, float32)."""
    windows = [item.window for item in items]
    longest = max(w.size for w in windows if w is not None)
    rows, offsets = [], []
    for w in windows:
        assert w is not None and w.frames is not None
        pad = longest - w.size
        z = w.frames
        if pad:
            zeros = z.new_zeros(z.shape[0], pad)
            z = torch.cat([zeros, z] if w.pad_left else [z, zeros], dim=1)
        rows.append(z)
        offsets.append(pad if w.pad_left else 0)
    first = items[0].vocoder
    frames = torch.stack(rows).to(first.speaker.dtype)
    speakers = torch.cat([item.vocoder.speaker for item in items])
    wav: np.ndarray = first.decode(frames, speakers).reshape(len(items), -1).float().cpu().numpy()
    if wav.shape[1] != longest * HOP:
        raise ValueError(f"the vocoder returned {wav.shape[1]} samples per row for {longest} frames")
    sizes = [w.size for w in windows if w is not None]
    return [wav[b, off * HOP : (off + size) * HOP] for b, (off, size) in enumerate(zip(offsets, sizes, strict=True))]


def _finish(item: Planned, wav: np.ndarray | None) -> Outcome:
    assert item.window is not None
    try:
        if wav is None:
            return item.vocoder.finish(item.window, np.zeros(0, dtype=np.float32))
        return item.vocoder.finish(item.window, wav)
    except Exception as exc:  # noqa: BLE001 - the item's own failure, reported to its request only
        return exc


def vocode_planned(items: Sequence[Planned], done: Done, limit: int,
                   on_call: Callable[[int], None] | None = None) -> list[int]:
    """Vocode every planned window, `limit` at most per generator call; `done(i, outcome)` as each is ready.

    `on_call(rows)` is told of each generator call before it runs (the engine's stats: counted before
    the audio goes out); the batch sizes are also returned.
    """
    for i, item in enumerate(items):
        if item.window is None:
            done(i, None)
        elif item.window.frames is None:  # a final chunk with nothing left: empty audio, no call
            done(i, _finish(item, None))
    sizes: list[int] = []

    def call(rows: int) -> None:
        sizes.append(rows)
        if on_call is not None:
            on_call(rows)

    for group in group_windows(items, max(1, limit)):
        members = [items[i] for i in group]
        call(len(group))
        try:
            wavs = decode_group(members)
        except Exception as exc:  # noqa: BLE001 - retried alone below, so only the culprit fails
            if len(group) == 1:
                done(group[0], exc)
                continue
            for i in group:
                call(1)
                try:
                    [wav] = decode_group([items[i]])
                except Exception as alone:  # noqa: BLE001 - this request's own failure
                    done(i, alone)
                    continue
                done(i, _finish(items[i], wav))
            continue
        for i, wav in zip(group, wavs, strict=True):
            done(i, _finish(items[i], wav))
    return sizes
