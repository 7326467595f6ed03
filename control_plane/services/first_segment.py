"""The first segment of a request, cut short so that its audio starts sooner.

Each segment is one engine call, and nothing is heard until the first one's first audio arrives.
Piper returns a sentence's audio in one piece, so without a cut the whole first sentence has to be
synthesised before the caller hears anything. Cutting the first sentence at its first natural
boundary makes the first call short; the rest of the sentence is synthesised while the first part
plays (rendering starts the next segment's request as soon as the current one is audible). Later
segments stay whole sentences: by then audio is flowing, and whole sentences keep their prosody.

Where the cut goes (thresholds in spoken words; each part keeps at least MIN_WORDS, so no one- or
two-word fragment is ever made):
- the first clause break (`,` `;` `:` or a spaced dash) after MIN_WORDS to MAX_CLAUSE_WORDS words;
  a later clause would make the first part half of a 12-word sentence or more (measured: a six-word
  first clause took 0.70 of the whole sentence's time to first audio, bench first-segment);
- else, in English sentences of at least LONG_SENTENCE_WORDS words (shorter ones synthesise quickly
  enough that a cut without punctuation is not worth its prosody), a word boundary after
  WORD_CUT_WORDS words, preferring the gap before a conjunction or preposition (a phrase boundary),
  never after an article, preposition or title, before an object pronoun, nor between two capitalised
  words (a name).

Safety: the cut is chosen in the written text (lexicons applied, before normalisation) between two
plain words (letters only: never inside a number, code, e-mail, URL, abbreviation or phoneme
block), and kept only if normalising the two sides separately gives exactly what normalising the
whole gives, so no expansion crosses it and nothing reads differently. The parts are exact slices
of the planned text; the space between them is not spoken and is still billed (`joins_next`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from control_plane.services.normalize import NormalizeMode, normalize
from control_plane.services.normalize.ipa import PHONEME_BLOCK

if TYPE_CHECKING:
    from control_plane.services.planning import Segment

Normaliser = Callable[[str], str]

MIN_WORDS = 3  # in each part
MAX_CLAUSE_WORDS = 5  # longer, and the first part of a 12-word sentence is no longer short (about half)
LONG_SENTENCE_WORDS = 10  # a cut without punctuation only in sentences at least this long
WORD_CUT_WORDS = (4, 3, 5)  # words before a cut without punctuation, in order of preference
MAX_TRIES = 6  # candidate cuts checked against the normaliser (each normalises the text once more)
SCAN_WORDS = 16  # written words looked at for candidates
WINDOW_CHARS = 200  # text past a cut that is normalised again to check it

_TOKEN = re.compile(r"\S+")
_SPACE = re.compile(r"\s")
_WORDLIKE = re.compile(r"\S*\w\S*")
_PLAIN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")  # letters, inner apostrophes and hyphens
_CLAUSE_END = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*[,;:]")
_DASHES = frozenset({"—", "–", "-", "--"})
_STARTS_WORD = re.compile(r"[^\W\d_]")

# A phrase usually starts before these (English): cutting before one sounds like a pause a speaker makes.
PHRASE_STARTS = frozenset({
    "and", "but", "or", "so", "because", "if", "when", "while", "where", "which", "who", "whose", "to",
    "for", "with", "without", "in", "on", "at", "from", "about", "after", "before", "until", "than", "as", "into",
    "by", "during",
})
# ... and never right after these: the first part would end on a word that needs the next one.
NO_CUT_AFTER = frozenset({
    "a", "an", "the", "to", "of", "in", "on", "at", "for", "with", "by", "from", "into", "about", "as", "my", "your",
    "our", "their", "his", "her", "its", "this", "that", "these", "those", "and", "or", "but", "nor", "is", "are",
    "was", "were", "be", "been", "am", "will", "can", "could", "would", "should", "shall", "may", "might", "must",
    "do", "does", "did", "not", "no", "very", "so", "than", "i", "we", "they", "he", "she", "mr", "mrs", "ms", "dr",
    "st", "prof", "let",
})
# ... nor right before these: an object or a negation belongs with the word before it.
NO_CUT_BEFORE = frozenset({"me", "you", "him", "her", "us", "them", "it", "not", "up", "out", "off"})


def count_words(text: str) -> int:
    """Spoken words: whitespace-separated tokens with a letter or digit, a phoneme block counting as one."""
    return len(_WORDLIKE.findall(PHONEME_BLOCK.sub("x", text)))


def _gaps(written: str) -> Iterator[tuple[int, int, str, str, str]]:
    """(offset after the token, tokens before it, token before, the one before that, token after) for each
    whitespace gap outside phoneme blocks, among the first SCAN_WORDS tokens; the end of the text is a
    gap with nothing after it (SSML: the first text run can end where markup follows)."""
    blocks = [m.span() for m in PHONEME_BLOCK.finditer(written)]
    tokens = [m for m in _TOKEN.finditer(written)][: SCAN_WORDS + 1]
    for i in range(1, len(tokens) + 1):
        end = tokens[i - 1].end()
        if any(a < end < b for a, b in blocks):
            continue
        earlier = tokens[i - 2].group() if i >= 2 else ""
        yield end, i, tokens[i - 1].group(), earlier, tokens[i].group() if i < len(tokens) else ""


def _candidates(written: str, language: str, sentence_words: int) -> Iterator[int]:
    """Offsets in `written` to try, best first: clause breaks in order, then word boundaries."""
    gaps = list(_gaps(written))
    for end, n, before, earlier, after in gaps:
        if n > MAX_CLAUSE_WORDS + 1:
            break
        if after and not _STARTS_WORD.match(after):
            continue
        if _CLAUSE_END.fullmatch(before) or (before in _DASHES and _PLAIN.fullmatch(earlier)):
            yield end
    if sentence_words < LONG_SENTENCE_WORDS or language.split("-")[0].lower() != "en":
        return
    plain = [(end, n, before, after) for end, n, before, _, after in gaps
             if n in WORD_CUT_WORDS and _PLAIN.fullmatch(before) and _PLAIN.fullmatch(after)
             and before.lower() not in NO_CUT_AFTER and after.lower() not in NO_CUT_BEFORE
             and not (before[0].isupper() and after[0].isupper())]
    ranked = sorted(plain, key=lambda g: (g[3].lower() not in PHRASE_STARTS, WORD_CUT_WORDS.index(g[1])))
    for end, _, _, _ in ranked:
        yield end


def first_cut(written: str, run: str, sentence: str, normalise: Normaliser, language: str) -> int | None:
    """Where the first part ends, as an offset into `sentence` (a space follows it there), or None.

    `written`: the text before normalisation; `run`: what the plan made of it (normalised, spaces
    collapsed); `sentence`: the plan's first segment, which starts with `run`'s first sentence.
    """
    total = count_words(sentence)
    if total < 2 * MIN_WORDS:
        return None
    for tries, offset in enumerate(_candidates(written, language, total)):
        if tries >= MAX_TRIES:
            break
        head = " ".join(normalise(written[:offset]).split())
        words = count_words(head)
        if not MIN_WORDS <= words <= MAX_CLAUSE_WORDS or total - words < MIN_WORDS:
            continue  # (numbers and codes written out can make a few written words many spoken ones)
        if not sentence.startswith(head + " "):
            continue  # the cut is not inside the first sentence as planned
        # Normalising the two sides apart must read exactly as the whole does: no expansion crosses the
        # cut and nothing reads differently. Rules reach a few words, so a window past the cut is enough
        # (a long text is not normalised again); the window's own edge may only make a safe cut fail.
        end = _window_end(written, offset)
        tail = " ".join(normalise(written[offset:end]).split())
        whole = " ".join(normalise(written[:end]).split()) if end < len(written) else run
        if " ".join((head, tail)).strip() != whole or not (run == whole or run.startswith(whole + " ")):
            continue
        return len(head)
    return None


def _window_end(written: str, offset: int) -> int:
    """The first whitespace WINDOW_CHARS past `offset` (or the end of the text)."""
    found = _SPACE.search(written, offset + WINDOW_CHARS)
    return found.start() if found else len(written)


def split_at(seg: Segment, at: int) -> list[Segment]:
    """`seg` as two segments: text[:at] and text[at + 1:] (the space between them is not sent)."""
    first, second = seg.text[:at], seg.text[at + 1:]
    head = replace(seg, text=first, silence_after_ms=0.0, joins_next=True,
                   marks=[(n, min(off, len(first))) for n, off in seg.marks if off <= at])
    tail = replace(seg, text=second, silence_before_ms=0.0,
                   marks=[(n, max(0, off - at - 1)) for n, off in seg.marks if off > at])
    return [head, tail]


def shorten_first(segments: list[Segment], written: str, spoken: str, language: str,
                  mode: NormalizeMode) -> list[Segment]:
    """`segments` with the first one cut at its first natural boundary, when it has one. `written`:
    the text the first segment begins with, before normalisation; `spoken`: what normalisation
    (in `mode`) made of it."""
    if not segments or not segments[0].text or segments[0].joins_next:
        return segments
    at = first_cut(written, " ".join(spoken.split()), segments[0].text,
                   lambda text: normalize(text, language, mode), language)
    if at is None:
        return segments
    return [*split_at(segments[0], at), *segments[1:]]
