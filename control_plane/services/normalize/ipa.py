"""Phonemes for engines that take them, a respelling for those that do not.

`[[ təˈmeɪtoʊ ]]` blocks (from `<phoneme alphabet="ipa">` or an IPA lexicon entry) go to the
bundled Piper voice as they are: Piper reads `[[ ... ]]` as raw phonemes, its phonemiser's input.
XTTS reads only text, so for it each block becomes a rough English-style respelling
("tuhmaytoh"): close, not exact, and documented as such in docs/normalisation.md.
"""

from __future__ import annotations

import re

PHONEME_BLOCK = re.compile(r"\[\[\s*(.*?)\s*\]\]", re.S)
ENGINES_WITH_PHONEMES = frozenset({"piper"})

# Longest symbols first (diphthongs and affricates before their parts).
_RESPELL = sorted({
    "tʃ": "ch", "dʒ": "j", "aɪ": "eye", "eɪ": "ay", "oʊ": "oh", "əʊ": "oh", "aʊ": "ow", "ɔɪ": "oy", "ɪə": "eer",
    "eə": "air", "ʊə": "oor", "ɜː": "er", "ɝ": "er", "ɚ": "er", "iː": "ee", "uː": "oo", "ɑː": "ah", "ɔː": "aw",
    "ə": "uh", "ɪ": "i", "i": "ee", "ɛ": "e", "e": "e", "æ": "a", "ɑ": "ah", "ɒ": "o", "ɔ": "aw", "ʌ": "u",
    "ʊ": "oo", "u": "oo", "o": "o", "a": "a", "y": "ue", "ø": "eu", "œ": "eu", "ɐ": "uh", "ɨ": "i",
    "θ": "th", "ð": "th", "ʃ": "sh", "ʒ": "zh", "ŋ": "ng", "ɲ": "ny", "ɹ": "r", "ɾ": "r", "ʁ": "r", "ʀ": "r",
    "r": "r", "j": "y", "x": "kh", "ç": "h", "ɡ": "g", "g": "g", "ʔ": "", "ɫ": "l", "ʎ": "ly", "β": "b",
    "ɣ": "g", "w": "w", "h": "h", "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "f": "f", "v": "v",
    "s": "s", "z": "z", "m": "m", "n": "n", "l": "l", "ɱ": "m",
}.items(), key=lambda kv: -len(kv[0]))
_DROP = re.compile(r"[ˈˌːˑ̩̯̃‿.]")


def respell(ipa: str) -> str:
    """IPA -> letters an English-reading engine says roughly right."""
    words = []
    for word in _DROP.sub("", ipa).split():
        out, i = [], 0
        while i < len(word):
            for sym, letters in _RESPELL:
                if word.startswith(sym, i):
                    out.append(letters)
                    i += len(sym)
                    break
            else:
                i += 1  # a symbol with no respelling is skipped
        words.append("".join(out))
    return " ".join(w for w in words if w)


def text_for_engine(text: str, engine: str) -> str:
    """A segment's text as `engine` takes it: phoneme blocks kept for Piper, respelled for the others."""
    if "[[" not in text or engine in ENGINES_WITH_PHONEMES:
        return text
    return PHONEME_BLOCK.sub(lambda m: respell(m.group(1)), text)


def escape_markup(text: str) -> str:
    """Written text never opens a phoneme block by itself: "[[" and "]]" lose their meaning."""
    return text.replace("[[", "[ [").replace("]]", "] ]")
