"""Dates and times, in the order the locale writes them: 03/12/2026 is March 12th in en-US and the
3rd of December in en-GB and every other supported language."""

from __future__ import annotations

import re

from control_plane.services.normalize.vocab import Vocab

ISO_DATE = re.compile(r"(?<![\d/.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d/-])")
NUM_DATE = re.compile(r"(?<![\d/.,-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\d/-]|\.\d)")
CLOCK = re.compile(r"(?<![\d:.,])([01]?\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?(?!\d)"
                   r"(?:\s?(?P<suffix>[AaPp]\.?\s?[Mm]\b\.?)|(?P<uhr>\s?Uhr\b)|\s?(?P<h>h\b))?")
HOUR_SUFFIX = re.compile(r"(?<![\d:.,])(1[0-2]|0?[1-9])\s?(?P<suffix>[AaPp]\.?\s?[Mm]\b\.?)")
FR_HOUR = re.compile(r"(?<![\d:.,])([01]?\d|2[0-3])\s?h\s?([0-5]\d)?(?![\w])")


def _year(text: str | None) -> int | None:
    if not text:
        return None
    y = int(text)
    return y if len(text) == 4 else (2000 + y if y < 70 else 1900 + y)


def _valid(day: int, month: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= 31


def say_iso(m: re.Match[str], v: Vocab, locale: str) -> str:
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return v.say_date(d, mo, y, locale) if _valid(d, mo) else m.group(0)


def say_numeric(m: re.Match[str], v: Vocab, locale: str) -> str:
    a, b, y = int(m.group(1)), int(m.group(3)), _year(m.group(4))
    day, month = (b, a) if v.date_order(locale) == "mdy" else (a, b)
    if not _valid(day, month):
        day, month = month, day  # 12/25/2026 in a day-first locale is still unambiguous
    if not _valid(day, month):
        return m.group(0)
    return v.say_date(day, month, y, locale)


_MONTH_PATTERNS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {}


def month_patterns(v: Vocab) -> tuple[re.Pattern[str], re.Pattern[str]]:
    if v.lang not in _MONTH_PATTERNS:
        _MONTH_PATTERNS[v.lang] = _compile_month_patterns(v)
    return _MONTH_PATTERNS[v.lang]


def _compile_month_patterns(v: Vocab) -> tuple[re.Pattern[str], re.Pattern[str]]:
    names = sorted([*v.months, *v.month_abbr], key=len, reverse=True)
    month = r"(?P<month>" + "|".join(re.escape(n) for n in names) + r")"
    suffix = v.ordinal_suffix if v.lang != "de" else r"\."
    day = r"(?P<day>[0-3]?\d)(?:" + (suffix or "(?!)") + r")?"
    yr = r"(?P<year>\d{4})"
    link = {"es": r"\s+de\s+", "pt": r"\s+de\s+"}.get(v.lang, r"\s+")
    # "Jan 5th, 2026", "January 5"
    month_day = re.compile(r"(?<!\w)" + month + r"\.?\s+" + day + r"(?!\w)(?:,?\s+" + yr + r")?(?![\w.,]\d)",
                           re.IGNORECASE)
    # "5 January 2026", "5th of Jan", "5 de enero de 2026", "5. Januar 2026", "1er janvier"
    of = r"(?:\s+of)?" if v.lang == "en" else ""
    day_month = re.compile(r"(?<![\w.])" + day + of + link + month + r"(?!\w)\.?(?:,?" + link + yr + r")?(?!\w)",
                           re.IGNORECASE)
    return month_day, day_month


def month_number(name: str, v: Vocab) -> int | None:
    low = name.lower().rstrip(".")
    for i, full in enumerate(v.months, 1):
        if full.lower() == low:
            return i
    return v.month_abbr.get(low)


def say_named(m: re.Match[str], v: Vocab, locale: str) -> str:
    month = month_number(m.group("month"), v)
    day = int(m.group("day"))
    if month is None or not _valid(day, month):
        return m.group(0)
    y = m.group("year")
    spoken = v.say_date(day, month, int(y) if y else None, locale)
    full = m.group("month").lower() in (n.lower() for n in v.months)
    if m.group(0).endswith(".") and (full or not m.string[m.end():].strip()):
        spoken += "."  # the full stop ended the sentence, it did not abbreviate the month
    return spoken


def _suffix(text: str | None) -> str:
    return re.sub(r"[^ap]", "", (text or "").lower()) + "m" if text else ""


def _keep_period(m: re.Match[str], spoken: str) -> str:
    """'at 5 p.m. Thanks' ends a sentence: keep its full stop when the suffix swallowed it."""
    s = m.group("suffix") or ""
    tail = m.string[m.end():]
    return spoken + "." if s.endswith(".") and (not tail.strip() or re.match(r"\s+[A-Z]", tail)) else spoken


def say_clock(m: re.Match[str], v: Vocab) -> str:
    h, mi = int(m.group(1)), int(m.group(2))
    suffix = _suffix(m.group("suffix"))
    if suffix and not 1 <= h <= 12:
        return m.group(0)
    if h == 24:
        h = 0
    spoken = v.say_time(h, mi, suffix)
    if (m.group("uhr") and v.lang != "de") or (m.group("h") and v.lang not in ("fr",)):
        spoken += m.group("uhr") or m.group("h") or ""
    return _keep_period(m, spoken)


def say_hour(m: re.Match[str], v: Vocab) -> str:
    return _keep_period(m, v.say_time(int(m.group(1)), 0, _suffix(m.group("suffix"))))


def say_fr_hour(m: re.Match[str], v: Vocab) -> str:
    return v.say_time(int(m.group(1)), int(m.group(2) or 0), "")
