"""What one language's rules need to know: its words for symbols, units, currencies and months, how
it writes dates and times, and its abbreviations. One `Vocab` per language, in en.py, es.py, ..."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Currency:
    one: str
    many: str
    minor_one: str
    minor_many: str


@dataclass(frozen=True)
class Vocab:
    lang: str
    decimal_sep: str  # "." or ","
    months: tuple[str, ...]
    month_abbr: dict[str, int]  # lower-case abbreviation (no dot) -> month 1..12
    weekday_abbr: dict[str, str]  # lower-case abbreviation -> day name
    currencies: dict[str, Currency]  # ISO code -> names
    amount_and: str  # "twelve dollars AND fifty cents"
    percent: str
    units: dict[str, tuple[str, str]]  # symbol as written -> (singular, plural)
    words: dict[str, str]  # at, dot, dash, underscore, plus, slash, colon, number, to, and, times, degrees
    id_keywords: tuple[str, ...]  # words after which a code is read character by character
    # (day, month, year or None, locale) -> spoken date; `month` is 1..12
    say_date: Callable[[int, int, int | None, str], str]
    # (hour, minute, "am"/"pm"/"", locale) -> spoken time
    say_time: Callable[[int, int, str], str]
    # (regex, replacement) pairs applied to the text, in order; a replacement may use groups, or be a
    # function of the match (when the reading depends on the words around it)
    abbreviations: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = ()
    ordinal_suffix: str = ""  # regex of the suffix written after an ordinal's digits, e.g. (st|nd|rd|th)
    feminine_ordinal: str = ""  # suffixes that make the ordinal feminine (ª)
    fixups: tuple[tuple[str, str], ...] = ()  # (regex, replacement) run last, e.g. German case endings
    default_date_order: str = "dmy"
    locale_date_order: dict[str, str] = field(default_factory=dict)  # "en-us" -> "mdy"

    def date_order(self, locale: str) -> str:
        return self.locale_date_order.get(locale.lower().replace("_", "-"), self.default_date_order)

