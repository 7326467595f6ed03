"""The order the rules run in, for one piece of text in one language.

Specific shapes go first (e-mail and web addresses, dates, times, phones, codes), then amounts,
then whatever numbers are left, then symbols. Each rule writes words, so later rules (which look
for digits and symbols) leave earlier results alone. `[[ ... ]]` blocks (phonemes placed by a
lexicon or `<phoneme>`) are passed through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from control_plane.services.normalize import amounts as A
from control_plane.services.normalize import contact as C
from control_plane.services.normalize import dates as D
from control_plane.services.normalize import de, en, es, fr, it, pt
from control_plane.services.normalize.numbers import base_language
from control_plane.services.normalize.vocab import Vocab

VOCABS: dict[str, Vocab] = {m.VOCAB.lang: m.VOCAB for m in (en, es, fr, de, it, pt)}
PHONEME_BLOCK = re.compile(r"\[\[.*?\]\]", re.S)
# Text without any of these has nothing the rules would change (checked first: most sentences skip).
_TRIGGER = re.compile(r"[\d@#$€£¥₹%&+°/]|\w\.|\b(?:Mrs?|Ms|Mme|Mlle|FAQs?|ETA|Uhr)\b")
_FR_THOUSANDS = re.compile(r"(?<![\d,.])(\d{1,3})((?: \d{3})+)(?![\d,]\d|\d)")
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_DOUBLE_COMMA = re.compile(r",\s*,")

Rule = Callable[[re.Match[str]], str | None]


def vocab_for(language: str) -> Vocab | None:
    base = language.replace("_", "-").split("-")[0].lower()
    return VOCABS.get(base) if base == base_language(language) else None


def _sub(pattern: re.Pattern[str], fn: Rule, text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        out = fn(m)
        return m.group(0) if out is None else out

    return pattern.sub(repl, text)


_ABBREV_CACHE: dict[str, list[tuple[re.Pattern[str], str | Rule]]] = {}
_WEEKDAY_RANGE: dict[str, re.Pattern[str]] = {}


def _abbreviations(v: Vocab) -> list[tuple[re.Pattern[str], str | Rule]]:
    if v.lang not in _ABBREV_CACHE:
        _ABBREV_CACHE[v.lang] = [(re.compile(p), r) for p, r in v.abbreviations]
    return _ABBREV_CACHE[v.lang]


def _is_title(pattern: re.Pattern[str]) -> bool:
    return r"(?=\s+[A-Z]" in pattern.pattern


def _abbreviation(m: re.Match[str], replacement: str, title: bool) -> str:
    """An abbreviation's full stop that also ends the text stays ("on Elm St." -> "on Elm Street.")."""
    out = m.expand(replacement)
    if not title and m.group(0).endswith(".") and not out.endswith(".") and not m.string[m.end():].strip():
        out += "."
    return out


def _weekday_range(v: Vocab) -> re.Pattern[str]:
    if v.lang not in _WEEKDAY_RANGE:
        days = "|".join(re.escape(d) for d in sorted(v.weekday_abbr, key=len, reverse=True))
        _WEEKDAY_RANGE[v.lang] = re.compile(r"(?<!\w)(" + days + r")\.?\s?[–-]\s?(" + days + r")\.?(?!\w)",
                                            re.IGNORECASE)
    return _WEEKDAY_RANGE[v.lang]


def _symbols(text: str, v: Vocab) -> str:
    w = v.words
    text = re.sub(r"\s*&\s*", f" {w['and']} ", text)
    text = re.sub(r"(?<=\s)@(?=\s)", w["at"], text)
    text = re.sub(r"(?<!\w)#(?=\s*\w)", w["number"] + " ", text)
    text = re.sub(r"(?<=[\s\w])\+(?=\s|\d)", f" {w['plus']} ", text)
    text = re.sub(r"\s*°(?!\w)", f" {w['degrees']}", text)
    text = re.sub(r"(?<=[A-Za-z])/(?=[A-Za-z])", " ", text)  # and/or
    text = re.sub(r"(?<=\d)/(?=\d)", " ", text)  # 24/7
    text = re.sub(r"\*{2,}", " ", text)  # **** 1234 (a masked card number)
    return text


def _tidy(text: str) -> str:
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _DOUBLE_COMMA.sub(",", text)
    return text.strip()


def normalize_piece(text: str, v: Vocab, locale: str) -> str:
    """Written text (no phoneme blocks) -> spoken words, by the rules of `v`."""
    if not _TRIGGER.search(text):
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()):]
    if v.lang == "fr":
        text = _FR_THOUSANDS.sub(lambda m: m.group(1) + m.group(2).replace(" ", "\u202f"), text)
    text = _sub(C.EMAIL, lambda m: C.say_email(m, v), text)
    text = _sub(C.URL, lambda m: C.say_url(m, v), text)
    for pattern, replacement in _abbreviations(v):
        if callable(replacement):
            text = _sub(pattern, replacement, text)
        else:
            title = _is_title(pattern)
            text = pattern.sub(lambda m, r=replacement, t=title: _abbreviation(m, r, t), text)  # type: ignore[misc]
    text = _sub(D.ISO_DATE, lambda m: D.say_iso(m, v, locale), text)
    text = _sub(D.NUM_DATE, lambda m: D.say_numeric(m, v, locale), text)
    for pattern in D.month_patterns(v):
        text = _sub(pattern, lambda m: D.say_named(m, v, locale), text)
    text = _sub(D.CLOCK, lambda m: D.say_clock(m, v), text)
    if v.lang == "en":
        text = _sub(D.HOUR_SUFFIX, lambda m: D.say_hour(m, v), text)
    if v.lang == "fr":
        text = _sub(D.FR_HOUR, lambda m: D.say_fr_hour(m, v), text)
    text = _sub(C.id_pattern(v), lambda m: C.say_id(m, v), text)
    text = _sub(C.PHONE, lambda m: C.say_phone(m, v), text)
    text = _sub(A.CURRENCY_BEFORE, lambda m: A.say_money(m, v), text)
    text = _sub(A.CURRENCY_AFTER, lambda m: A.say_money(m, v), text)
    text = _sub(A.PERCENT, lambda m: A.say_percent(m, v), text)
    text = _sub(A.unit_pattern(v), lambda m: A.say_unit(m, v), text)
    if (ordinals := A.ordinal_pattern(v)) is not None:
        text = _sub(ordinals, lambda m: A.say_ordinal(m, v), text)
    text = _sub(C.MIXED_CODE, lambda m: C.spell_code(m.group(0), v), text)
    text = _sub(_weekday_range(v), lambda m: f"{v.weekday_abbr[m.group(1).lower()]} {v.words['to']} "
                                                f"{v.weekday_abbr[m.group(2).lower()]}", text)
    text = _sub(A.RANGE, lambda m: A.say_range(m, v), text)
    text = _sub(A.NUMBER_TOKEN, lambda m: A.say_number(m, v), text)
    text = _symbols(text, v)
    for fixup, replacement in v.fixups:
        text = re.sub(fixup, replacement, text)
    return lead + _tidy(text) + trail


def normalize_text(text: str, language: str, locale: str | None = None) -> str:
    """Normalise everything outside `[[ phoneme ]]` blocks; unsupported languages come back unchanged."""
    v = vocab_for(language)
    if v is None:
        return text
    loc = locale or language
    parts = PHONEME_BLOCK.split(text)
    blocks = PHONEME_BLOCK.findall(text)
    out = [normalize_piece(parts[0], v, loc)]
    for block, part in zip(blocks, parts[1:], strict=True):
        out.append(block)
        out.append(normalize_piece(part, v, loc))
    return "".join(out)
