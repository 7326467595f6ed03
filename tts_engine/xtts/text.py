"""Sentence splitting to the per-language character limits of the XTTS tokenizer.

The tokenizer warns (and logs the text) when a segment exceeds its language's limit, and quality
drops past it, so every segment handed to the model is kept within `CHAR_LIMITS`.
"""

from __future__ import annotations

import re
import textwrap

from tts_engine.xtts.languages import CHAR_LIMITS

# A sentence ends at terminal punctuation (Latin, CJK, Devanagari, Arabic) followed by space or the end.
_SENTENCE_END = re.compile(r"(?<=[.!?;…。！？；।؟])(?:\s+|$)|(?<=[。！？；])")
_WHITESPACE = re.compile(r"\s+")
_NO_SPACE_LANGUAGES = frozenset({"zh", "ja"})


def split_sentences(text: str) -> list[str]:
    """Split at sentence-final punctuation; whitespace is collapsed."""
    text = _WHITESPACE.sub(" ", text).strip()
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def _wrap(sentence: str, limit: int) -> list[str]:
    # Prefer word boundaries; scripts without spaces (zh, ja) are cut at the limit.
    return textwrap.wrap(sentence, width=limit, break_long_words=True, break_on_hyphens=False) or [sentence[:limit]]


def split_text(text: str, language: str, limit: int | None = None) -> list[str]:
    """Segments of at most `limit` (default CHAR_LIMITS[language]) characters, in order, short sentences packed."""
    limit = limit or CHAR_LIMITS[language]
    if len(text.strip()) <= limit:
        return [text.strip()] if text.strip() else []  # as the reference without splitting: text untouched
    joiner = "" if language in _NO_SPACE_LANGUAGES else " "
    segments: list[str] = []
    for sentence in split_sentences(text):
        pieces = [sentence] if len(sentence) <= limit else _wrap(sentence, limit)
        for piece in pieces:
            if segments and len(segments[-1]) + len(joiner) + len(piece) <= limit:
                segments[-1] = f"{segments[-1]}{joiner}{piece}"
            else:
                segments.append(piece)
    return segments
