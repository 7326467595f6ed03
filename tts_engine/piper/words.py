"""Word timings from Piper's own phoneme durations, mapped back to the words of the input text.

Piper's model predicts how many audio samples each phoneme id lasts (the alignment output that
piper-tts patches into the voice model). A sentence's phonemes separate words with ' ', so the
phoneme durations give each spoken word's start and end. Spoken words are mapped back to the
input's words by phonemising each input word on its own: "42" speaks as two words ("forty two"),
"-" as none. When espeak's sentence context changes that count (rare), the sentence's spoken words
are shared out over its input words in proportion to their counts, so every input word still gets
an ordered, non-overlapping span inside its sentence's audio.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_TOKEN = re.compile(r"\S+")
PAUSES = set(",.;:!?¡¿—…\"'()[]")


@dataclass(frozen=True)
class Word:
    """An input word and its span in the audio of the sentence chunk it belongs to (samples)."""

    char_start: int
    char_end: int
    start: int
    end: int


def phoneme_durations(phonemes: Sequence[str], id_samples: Sequence[int] | np.ndarray,
                      id_map: Mapping[str, Sequence[int]],
                      pad: str = "_", bos: str = "^", eos: str = "$") -> list[int] | None:
    """Samples per phoneme (BOS and EOS included, first and last), following how piper lays out ids:
    BOS, then each phoneme's ids followed by PAD, then EOS. None when the layout does not match."""
    pad_ids = id_map.get(pad, [])
    out: list[int] = []
    i = 0
    for phoneme in itertools.chain([bos], phonemes, [eos]):
        ids = list(id_map.get(phoneme, []))
        if phoneme != eos:
            ids += pad_ids
        j = i + len(ids)
        if j > len(id_samples):
            return None
        out.append(int(sum(id_samples[i:j])))
        i = j
    return out if i == len(id_samples) else None


def spoken_words(phonemes: Sequence[str], durations: Sequence[int]) -> list[tuple[int, int]]:
    """(start, end) samples of each spoken word of a sentence; pauses (punctuation) are not in a word."""
    words: list[tuple[int, int]] = []
    at = durations[0]  # BOS
    start: int | None = None
    end = at
    for phoneme, n in zip(phonemes, durations[1:-1], strict=True):
        if phoneme == " ":
            if start is not None:
                words.append((start, end))
            start = None
        elif phoneme not in PAUSES:
            if start is None:
                start = at
            end = at + n
        at += n
    if start is not None:
        words.append((start, end))
    return words


def input_tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def count_spoken(token: str, phonemize: Callable[[str], list[list[str]]]) -> int:
    """How many spoken words espeak makes of one input word."""
    joined = " ".join("".join(p for p in sentence) for sentence in phonemize(token))
    return sum(1 for w in joined.split(" ") if any(c not in PAUSES for c in w))


class WordAligner:
    """Walks a request's input words across its sentence chunks, in order."""

    def __init__(self, text: str, phonemize: Callable[[str], list[list[str]]]) -> None:
        self.text = text
        self.tokens = input_tokens(text)
        self.counts = [count_spoken(text[a:b], phonemize) for a, b in self.tokens]
        self.next = 0  # the first input word not yet placed

    def sentence(self, spans: list[tuple[int, int]]) -> list[Word]:
        """The input words of the next sentence chunk, given its spoken words' spans."""
        if not spans:
            return []
        first, need, k = self.next, len(spans), self.next
        total = 0
        while k < len(self.tokens) and total + self.counts[k] <= need:
            total += self.counts[k]
            k += 1
            if total == need:
                break
        while k < len(self.tokens) and self.counts[k] == 0:
            k += 1  # trailing punctuation-only tokens belong to this sentence
        if k == first:
            k = first + 1 if first < len(self.tokens) else first
        self.next = k
        chosen = list(range(first, k))
        if not chosen:
            return []
        if total == need:
            return self._exact(chosen, spans)
        return self._shared(chosen, spans)

    def _exact(self, chosen: list[int], spans: list[tuple[int, int]]) -> list[Word]:
        out: list[Word] = []
        j = 0
        for i in chosen:
            a, b = self.tokens[i]
            n = self.counts[i]
            if n == 0:
                continue
            out.append(Word(a, b, spans[j][0], spans[j + n - 1][1]))
            j += n
        return out

    def _shared(self, chosen: list[int], spans: list[tuple[int, int]]) -> list[Word]:
        weights = [max(self.counts[i], 1) for i in chosen]
        scale = len(spans) / sum(weights)
        out: list[Word] = []
        acc = 0.0
        for i, w in zip(chosen, weights, strict=True):
            lo = min(int(acc), len(spans) - 1)
            acc += w * scale
            hi = min(max(int(round(acc)) - 1, lo), len(spans) - 1)
            a, b = self.tokens[i]
            start = max(spans[lo][0], out[-1].end if out else 0)
            out.append(Word(a, b, start, max(spans[hi][1], start)))
        return out


def words_tensor(words: list[Word]) -> np.ndarray:
    """The WORDS output: JSON [[char_start, char_end, start_sample, end_sample], ...] of one chunk."""
    rows = [[w.char_start, w.char_end, w.start, w.end] for w in words]
    return np.array([json.dumps(rows, separators=(",", ":")).encode()], dtype=np.object_)
