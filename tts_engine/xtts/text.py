"""Text to the segments the XTTS model speaks, within its tokenizer's per-language limits.

The tokenizer warns (and logs the text) when a segment exceeds its language's limit, and quality
drops past it, so every segment handed to the model is kept within `CHAR_LIMITS`. The splitting
itself is the shared one (tts_contract.sentences), packed: as many whole sentences per segment as fit.
"""

from __future__ import annotations

from tts_contract.languages import CHAR_LIMITS
from tts_contract.sentences import collapse_whitespace, split_sentences
from tts_contract.sentences import split_text as split_pieces

__all__ = ["split_sentences", "split_text"]


def split_text(text: str, language: str, limit: int | None = None) -> list[str]:
    """Segments of at most `limit` (default CHAR_LIMITS[language]) characters, in order, short sentences packed."""
    limit = limit or CHAR_LIMITS[language]
    stripped = text.strip()
    if len(stripped) <= limit:
        return [stripped] if stripped else []  # as the reference without splitting: text untouched
    return [piece for _, piece in split_pieces(collapse_whitespace(text), limit, pack=True)]
