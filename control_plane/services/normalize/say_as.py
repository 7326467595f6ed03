"""SSML `<say-as interpret-as=...>`: the author says what the text is, so these readings win over
automatic normalisation, and use the same words for the same things."""

from __future__ import annotations

import re

from control_plane.services.normalize import amounts as A
from control_plane.services.normalize.numbers import cardinal, decimal, digits, ordinal
from control_plane.services.normalize.pipeline import VOCABS, vocab_for
from control_plane.services.normalize.vocab import Vocab

SAY_AS = {"cardinal", "number", "ordinal", "digits", "characters", "spell-out", "verbatim", "date", "time",
          "telephone", "currency", "unit", "fraction"}


def _vocab(language: str) -> Vocab:
    return vocab_for(language) or VOCABS["en"]


def say_as(kind: str, text: str, fmt: str | None, language: str) -> str:
    """The spoken form of `text` read as `kind`; ValueError (with a reason) when it is not one."""
    v = _vocab(language)
    t = text.strip()
    if kind in ("cardinal", "number"):
        parsed = A.parse_number(t.lstrip("-"), v)
        if parsed is None:
            raise ValueError(f"'{text}' is not a number")
        whole, frac = parsed
        words = decimal(whole, frac, v.lang) if frac else cardinal(int(whole), v.lang)
        return (cardinal(-1, v.lang).split()[0] + " " + words) if t.startswith("-") else words
    if kind == "ordinal":
        m = re.fullmatch(r"(\d+)\s*(?:st|nd|rd|th|º|ª|er|re|e|ème|\.)?", t)
        if not m:
            raise ValueError(f"'{text}' is not an ordinal")
        return ordinal(int(m.group(1)), language, feminine=t.endswith("ª"))
    if kind == "digits":
        if not re.search(r"\d", t):
            raise ValueError("no digits")
        return digits(t, language)
    if kind in ("characters", "spell-out", "verbatim"):
        return " ".join(c for c in t if not c.isspace())
    if kind == "telephone":
        groups = re.findall(r"\d+", t)
        if not groups:
            raise ValueError("no digits")
        head = v.words["plus"] + ", " if t.startswith("+") else ""
        return head + ", ".join(digits(g, v.lang) for g in groups)
    if kind == "date":
        return _date(t, fmt or "ymd", v, language)
    if kind == "time":
        return _time(t, v)
    if kind == "currency":
        m = A.CURRENCY_BEFORE.fullmatch(t.replace(",", "") if v.decimal_sep == "." else t) or \
            A.CURRENCY_AFTER.fullmatch(t)
        spoken = A.say_money(m, v) if m else None
        if spoken is None:
            raise ValueError(f"'{text}' is not an amount (e.g. $12.50, 12.50 EUR)")
        return spoken
    if kind == "unit":
        m = A.unit_pattern(v).fullmatch(t)
        if not m:
            raise ValueError(f"'{text}' is not a measure with a known unit")
        return A.say_unit(m, v)
    if kind == "fraction":
        m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", t)
        if not m:
            raise ValueError(f"'{text}' is not a fraction (e.g. 3/4)")
        return f"{cardinal(int(m.group(1)), v.lang)} {v.words['slash'] if v.lang != 'en' else 'over'} " \
               f"{cardinal(int(m.group(2)), v.lang)}"
    raise ValueError(f"unsupported interpretation {kind}")


def _date(text: str, fmt: str, v: Vocab, language: str) -> str:
    parts = [p for p in re.split(r"[-/.\s]+", text) if p]
    if len(parts) != len(fmt) or not all(p.isdigit() for p in parts) or not re.fullmatch(r"[dmy]{1,3}", fmt):
        raise ValueError(f"'{text}' does not match format '{fmt}'")
    fields = dict(zip(fmt, (int(p) for p in parts), strict=True))
    month, day, year = fields.get("m"), fields.get("d"), fields.get("y")
    if month is not None and not 1 <= month <= 12:
        raise ValueError(f"month {month} out of range")
    if day is not None and not 1 <= day <= 31:
        raise ValueError(f"day {day} out of range")
    if month and day:
        return v.say_date(day, month, year, language)
    words = [v.months[month - 1]] if month else []
    if day:
        words.append(ordinal(day, language))
    if year is not None:
        from control_plane.services.normalize.numbers import year as say_year

        words.append(say_year(year, language))
    return " ".join(words)


def _time(text: str, v: Vocab) -> str:
    m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*([aApP]\.?[mM]\.?)?", text)
    if not m:
        raise ValueError(f"'{text}' is not a time (hh:mm[:ss] [am|pm])")
    h, mi = int(m.group(1)), int(m.group(2) or 0)
    suffix = re.sub(r"[^ap]", "", (m.group(4) or "").lower())
    suffix = suffix + "m" if suffix else ""
    if h > 23 or mi > 59 or (suffix and not 1 <= h <= 12):
        raise ValueError(f"'{text}' is out of range")
    return v.say_time(h, mi, suffix)
