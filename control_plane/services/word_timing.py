"""Word timings for engines that do not time words themselves (XTTS).

XTTS is given one sentence per request and streams its audio; its GPT emits about 21.5 audio codes
per second of speech for the whole sentence, with no word boundaries the serving path can read. The
sentence's measured duration is therefore shared out over its words by each word's estimated spoken
length (syllables, digits spoken as words, a pause after punctuation), so every word gets an ordered
start and end inside the sentence's real audio. Piper reports measured phoneme durations instead
(tts_engine/piper/words.py), and those are used whenever an engine sends them.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\S+")
_VOWELS = re.compile(r"[aeiouyàáâäèéêëìíîïòóôöùúûüåæøœ]+", re.I)
PAUSE_WEIGHT = 0.6  # syllables' worth of time a comma or full stop takes
EDGE_WEIGHT = 0.5  # lead-in and tail silence, in syllables


def syllables(word: str) -> float:
    digits = sum(c.isdigit() for c in word)
    letters = re.sub(r"[^\w]", "", word)
    count = len(_VOWELS.findall(letters)) if letters else 0
    if letters.lower().endswith("e") and count > 1:
        count -= 1  # a silent final e
    return max(count, 1 if letters else 0) + 1.5 * digits


def estimate_words(text: str, duration_s: float) -> list[tuple[int, int, float, float]]:
    """(char_start, char_end, start_s, end_s) of each word of `text`, spread over `duration_s`."""
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    if not tokens or duration_s <= 0:
        return []
    weights = [max(syllables(text[a:b]), 0.5) for a, b in tokens]
    pauses = [PAUSE_WEIGHT if text[b - 1] in ",.;:!?" else 0.0 for _, b in tokens]
    total = EDGE_WEIGHT * 2 + sum(weights) + sum(pauses[:-1])
    per = duration_s / total
    out: list[tuple[int, int, float, float]] = []
    at = EDGE_WEIGHT * per
    for (a, b), w, pause in zip(tokens, weights, pauses, strict=True):
        start, end = at, at + w * per
        out.append((a, b, round(start, 4), round(end, 4)))
        at = end + pause * per
    return out
