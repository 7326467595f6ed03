"""The one sentence splitter: for plans (offsets kept), for the XTTS model (segments packed to the
tokenizer limit) and for streamed text (is the buffered sentence complete yet?).

A sentence ends at terminal punctuation followed by whitespace or the end of the text; full-width
terminals (CJK) end one where they stand, since those scripts put no space after them. A sentence
longer than the limit is cut at clause breaks, then between words, and a single word longer than
the limit is cut at the limit. Pieces are always exact slices of the input, so offsets (SSML marks)
stay true and nothing is added between them.
"""

from __future__ import annotations

import re

TERMINALS = ".!?;…।؟"  # Latin, ellipsis, Devanagari danda, Arabic question mark
FULL_WIDTH_TERMINALS = "。！？；"
CLAUSE_BREAKS = ",:"
FULL_WIDTH_CLAUSE_BREAKS = "，、："

_SENTENCE_END = re.compile(
    rf"(?<=[{re.escape(TERMINALS)}{FULL_WIDTH_TERMINALS}])(?:\s+|$)|(?<=[{FULL_WIDTH_TERMINALS}])"
)
_CLAUSE_END = re.compile(rf"(?<=[{CLAUSE_BREAKS}{FULL_WIDTH_CLAUSE_BREAKS}])\s+|(?<=[{FULL_WIDTH_CLAUSE_BREAKS}])")
_WORD_GAP = re.compile(r"\s+")
_WHITESPACE = re.compile(r"\s+")

Piece = tuple[int, str]  # (offset in the text, the slice text[offset:offset + len(slice)])


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _pieces(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """Spans of text[start:end] between the matches of `pattern`, without edge whitespace or empty ones."""
    spans: list[tuple[int, int]] = []
    pos = start
    for match in pattern.finditer(text, start, end):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, end))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


def sentences(text: str) -> list[Piece]:
    """Every sentence of `text` with its offset; terminal punctuation stays with its sentence."""
    return [(a, text[a:b]) for a, b in _pieces(text, 0, len(text), _SENTENCE_END)]


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` with whitespace collapsed."""
    return [sentence for _, sentence in sentences(collapse_whitespace(text))]


def _pack(spans: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Greedily merge neighbouring spans while the merged slice stays within `limit`."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and b - out[-1][0] <= limit:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _within(text: str, a: int, b: int, limit: int) -> list[tuple[int, int]]:
    """Cut one over-long span at clause breaks, then between words, then hard at the limit."""
    if b - a <= limit:
        return [(a, b)]
    out: list[tuple[int, int]] = []
    for pattern in (_CLAUSE_END, _WORD_GAP):
        parts = _pieces(text, a, b, pattern)
        if len(parts) > 1:
            for pa, pb in _pack(parts, limit):
                out.extend(_within(text, pa, pb, limit))
            return out
    return [(pos, min(pos + limit, b)) for pos in range(a, b, limit)]


def split_text(text: str, limit: int, *, pack: bool = False) -> list[Piece]:
    """Pieces of `text` no longer than `limit`, in order, with their offsets.

    One sentence per piece (plans: each is its own engine call, so audio starts sooner), or with
    `pack=True` as many whole sentences per piece as fit (the model: fewer, fuller segments).
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    spans: list[tuple[int, int]] = []
    for a, b in _pieces(text, 0, len(text), _SENTENCE_END):
        spans.extend(_within(text, a, b, limit))
    if pack:
        spans = _pack(spans, limit)
    return [(a, text[a:b]) for a, b in spans]


def complete_sentence(buffer: str) -> tuple[int, int] | None:
    """For text that is still arriving: (end of the first sentence, end of the space after it), or None.

    A Latin terminal at the very end of the buffer does not complete a sentence yet: "3." may be
    the start of "3.5". A full-width terminal does.
    """
    for match in _SENTENCE_END.finditer(buffer):
        end = match.start()
        if match.end() == len(buffer) and match.start() == match.end() and buffer[end - 1] not in FULL_WIDTH_TERMINALS:
            return None
        return end, match.end()
    return None
