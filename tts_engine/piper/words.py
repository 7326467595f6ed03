"""Word timings from Piper's own phoneme durations, mapped back to the words of the input text.

Piper's model predicts how many audio samples each phoneme id lasts (the alignment output that
piper-tts patches into the voice model), so each phoneme of a sentence has a measured start and
end in its audio. Input words are laid over the sentence's phonemes by their own phonemisation
(WordAligner): "42" covers the phonemes of "forty two", "in the" shares the one spoken word espeak
makes of it, "-" covers none. Every input word gets an ordered, non-overlapping span inside its
sentence's audio.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_TOKEN = re.compile(r"\[\[.*?\]\]|\S+")  # a [[ phoneme ]] block is one input word
PAUSES = set(",.;:!?¡¿—…\"'()[]")
SILENT = PAUSES | {" ", "ˈ", "ˌ"}
SENTENCE_ENDS = ".!?;:"


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


def sounding(phoneme: str) -> bool:
    """A phoneme that takes part in a word's sound: not a word gap, stress mark or pause."""
    return phoneme not in SILENT


def input_tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def sounding_length(token: str, phonemize: Callable[[str], Sequence[Sequence[str]]]) -> int:
    """How many sounding phonemes espeak makes of one input word on its own."""
    return sum(1 for sentence in phonemize(token) for p in sentence if sounding(p))


class WordAligner:
    """Walks a request's input words across its sentence chunks, in order.

    espeak may join words in context ("in the" is one spoken word) or reduce a vowel, so words are
    not matched by count: each input word's share of the sentence is its sounding-phoneme length
    when phonemised alone, laid over the sentence's sounding phonemes in order, and its span runs
    from the first to the last phoneme of its share.
    """

    def __init__(self, text: str, phonemize: Callable[[str], Sequence[Sequence[str]]]) -> None:
        self.text = text
        self.tokens = input_tokens(text)
        self.lengths = [sounding_length(text[a:b], phonemize) for a, b in self.tokens]
        self.next = 0  # the first input word not yet placed

    def _take(self, need: int, last: bool) -> int:
        """How many input words the next sentence (of `need` sounding phonemes) speaks."""
        rest = len(self.tokens) - self.next
        if last or rest <= 1:
            return rest
        best, best_err, total = 1, None, 0
        for k in range(1, rest + 1):
            total += self.lengths[self.next + k - 1]
            a, b = self.tokens[self.next + k - 1]
            err = abs(total - need) + (0 if self.text[b - 1] in SENTENCE_ENDS else 0.2 * need)
            if best_err is None or err < best_err:
                best, best_err = k, err
            if total > 1.5 * need + 2:
                break
        while self.next + best < len(self.tokens) and self.lengths[self.next + best] == 0:
            best += 1  # punctuation-only tokens after it belong to this sentence
        return best

    def sentence(self, phonemes: Sequence[str], durations: Sequence[int], *, last: bool = False) -> list[Word]:
        """The input words the next sentence chunk speaks and their sample spans within it."""
        starts, at = [], durations[0]  # BOS first
        for n in durations[1:-1]:
            starts.append(at)
            at += n
        ends = [s + n for s, n in zip(starts, durations[1:-1], strict=True)]
        audible = [i for i, p in enumerate(phonemes) if sounding(p)]
        if not audible or self.next >= len(self.tokens):
            return []
        chosen = range(self.next, self.next + self._take(len(audible), last))
        self.next = chosen.stop
        total = sum(self.lengths[i] for i in chosen) or 1
        scale = len(audible) / total
        out: list[Word] = []
        cum = 0
        for i in chosen:
            a, b = self.tokens[i]
            lo = min(int(round(cum * scale)), len(audible) - 1)
            cum += self.lengths[i]
            hi = min(max(int(round(cum * scale)) - 1, lo), len(audible) - 1)
            if self.lengths[i] == 0:
                edge = out[-1].end if out else starts[audible[0]]
                out.append(Word(a, b, edge, edge))
                continue
            start = max(starts[audible[lo]], out[-1].end if out else 0)
            out.append(Word(a, b, start, max(ends[audible[hi]], start)))
        return out


def words_tensor(words: list[Word]) -> np.ndarray:
    """The WORDS output: JSON [[char_start, char_end, start_sample, end_sample], ...] of one chunk."""
    rows = [[w.char_start, w.char_end, w.start, w.end] for w in words]
    return np.array([json.dumps(rows, separators=(",", ":")).encode()], dtype=np.object_)
