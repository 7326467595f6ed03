"""Amounts: money with its symbol or code, percentages, measures with units, ordinals, ranges,
decimals and plain numbers, with each language's decimal and thousands separators."""

from __future__ import annotations

import re

from control_plane.services.normalize.numbers import (
    base_language,
    cardinal,
    decimal,
    digits,
    grouped_digits,
    ordinal,
    year,
)
from control_plane.services.normalize.vocab import Vocab

SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "R$": "BRL", "C$": "CAD", "A$": "AUD",
           "Fr.": "CHF", "₹": "INR"}
CODES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "MXN", "BRL", "INR")
SCALES = {"k": 1_000, "K": 1_000, "thousand": 1_000, "m": 1_000_000, "M": 1_000_000, "million": 1_000_000,
          "mn": 1_000_000, "bn": 1_000_000_000, "billion": 1_000_000_000}
NUMBER = r"\d{1,3}(?:[,.\u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CUR = r"(?P<sym>US\$|R\$|C\$|A\$|[$€£¥₹]|" + "|".join(CODES) + r")"
CURRENCY_BEFORE = re.compile(r"(?<![\w$€£¥])" + _CUR + r"\s?(?P<neg>-)?(?P<num>" + NUMBER + r")"
                             r"(?:\s?(?P<scale>k|K|M|bn|mn|thousand|million|billion)\b)?(?![\d])")
CURRENCY_AFTER = re.compile(r"(?<![\w.,])(?P<neg>-)?(?P<num>" + NUMBER + r")\s?" + r"(?P<sym>[$€£¥₹]|"
                            + "|".join(CODES) + r")(?!\w)")
PERCENT = re.compile(r"(?<![\w.,])(?P<neg>[-+])?(?P<num>\d+(?:[.,]\d+)?)\s?%")
RANGE = re.compile(r"(?<![\w.,:/-])(\d{1,4})\s?[–-]\s?(\d{1,4})(?![\w,:/-]|[.,]\d)")
_NON_EN_THOUSANDS = re.compile(r"\d{1,3}(?:[.\u00a0\u202f]\d{3})+(?:,\d+)?")
_EN_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
YEAR_CONTEXT = re.compile(r"(?:\b(?:in|since|from|until|till|by|of|year|before|after|during|around)\s+)$",
                          re.IGNORECASE)
_NOUN_ONE = {"es": (r"\buno$", "un", r"iuno$", "iún"), "it": (r"\buno$", "un", r"", ""),
             "pt": (r"\bum$", "um", r"", ""), "de": (r"eins$", "ein", r"", ""), "fr": (r"", "", r"", "")}


def parse_number(text: str, v: Vocab) -> tuple[str, str] | None:
    """Written number -> (integer digits, fraction digits), per the language's separators."""
    t = text.replace("\u00a0", " ").replace("\u202f", " ")
    dec = v.decimal_sep
    if dec == ".":
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", t) or "," not in t:
            whole, _, frac = t.replace(",", "").partition(".")
        else:
            whole, _, frac = t.partition(",")  # "12,50" in English text: a decimal comma
    else:
        if re.fullmatch(r"\d{1,3}(?:[. ]\d{3})+(?:,\d+)?", t):
            whole, _, frac = t.replace(".", "").replace(" ", "").partition(",")
        elif "," in t:
            whole, _, frac = t.partition(",")
        else:
            whole, _, frac = t.partition(".")  # "12.50 €": a decimal point
            if len(frac) == 3:
                whole, frac = whole + frac, ""
    whole = whole.replace(" ", "")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    return whole, frac


def before_noun(words: str, lang: str) -> str:
    """"uno" -> "un euro", "eins" -> "ein Euro": the form a number takes before a noun."""
    rule = _NOUN_ONE.get(lang)
    if not rule:
        return words
    a, b, c, d = rule
    if a and re.search(a, words):
        return re.sub(a, b, words)
    if c and re.search(c, words):
        return re.sub(c, d, words)
    return words


def say_money(m: re.Match[str], v: Vocab) -> str | None:
    code = SYMBOLS.get(m.group("sym"), m.group("sym"))
    cur = v.currencies.get(code)
    parsed = parse_number(m.group("num"), v)
    if parsed is None:
        return None
    whole, frac = parsed
    lang = v.lang
    neg = f"{cardinal(-1, lang).split()[0]} " if m.group("neg") else ""
    name_one, name_many = (cur.one, cur.many) if cur else (" ".join(code), " ".join(code))
    scale = m.groupdict().get("scale")
    if scale:
        amount = decimal(whole, frac, lang) if frac else cardinal(int(whole), lang)
        scale_word = {1_000: "thousand", 1_000_000: "million", 1_000_000_000: "billion"}[SCALES[scale]]
        if lang != "en":
            scale_word = cardinal(SCALES[scale], lang).split()[-1]
        return f"{neg}{amount} {scale_word} {name_many}"
    major = int(whole)
    minor = int((frac + "0")[:2]) if frac else 0
    head = f"{before_noun(cardinal(major, lang), lang)} {name_one if major == 1 else name_many}"
    if minor and cur and code != "JPY":
        tail = f"{before_noun(cardinal(minor, lang), lang)} {cur.minor_one if minor == 1 else cur.minor_many}"
        head = tail if major == 0 else f"{head} {v.amount_and} {tail}"
    return neg + head


def say_percent(m: re.Match[str], v: Vocab) -> str:
    parsed = parse_number(m.group("num"), v) or (m.group("num"), "")
    whole, frac = parsed
    n = decimal(whole, frac, v.lang) if frac else cardinal(int(whole), v.lang)
    sign = {"-": cardinal(-1, v.lang).split()[0] + " ", "+": v.words["plus"] + " "}.get(m.group("neg") or "", "")
    return f"{sign}{n} {v.percent}"


_UNIT_PATTERNS: dict[str, re.Pattern[str]] = {}
AMBIGUOUS_UNITS = {"in", "m", "h", "g", "l", "L", "W", "V", "mi", "s"}


def unit_pattern(v: Vocab) -> re.Pattern[str]:
    if v.lang not in _UNIT_PATTERNS:
        names = sorted(v.units, key=len, reverse=True)
        spaced = "|".join(re.escape(u) for u in names if u not in AMBIGUOUS_UNITS)
        tight = "|".join(re.escape(u) for u in names if u in AMBIGUOUS_UNITS) or "(?!)"
        _UNIT_PATTERNS[v.lang] = re.compile(
            r"(?<![\w.,])(?P<num>\d+(?:[.,]\d+)?)(?:\s?(?P<unit>" + spaced + r")|(?P<tight>" + tight + r"))"
            r"(?![\w/])")
    return _UNIT_PATTERNS[v.lang]


def say_unit(m: re.Match[str], v: Vocab) -> str:
    unit = m.group("unit") or m.group("tight")
    one, many = v.units[unit]
    parsed = parse_number(m.group("num"), v) or (m.group("num"), "")
    whole, frac = parsed
    if frac:
        return f"{decimal(whole, frac, v.lang)} {many}"
    n = int(whole)
    return f"{before_noun(cardinal(n, v.lang), v.lang)} {one if n == 1 else many}"


_ORDINAL_PATTERNS: dict[str, re.Pattern[str]] = {}


def ordinal_pattern(v: Vocab) -> re.Pattern[str] | None:
    if not v.ordinal_suffix or v.lang == "de":
        return None
    if v.lang not in _ORDINAL_PATTERNS:
        fem = v.feminine_ordinal or "(?!)"
        _ORDINAL_PATTERNS[v.lang] = re.compile(r"(?<![\w.,])(\d{1,4})(?P<suf>" + v.ordinal_suffix + "|" + fem
                                               + r")(?!\w)")
    return _ORDINAL_PATTERNS[v.lang]


def say_ordinal(m: re.Match[str], v: Vocab) -> str:
    n = int(m.group(1))
    if v.lang == "fr" and n == 1:
        return "première" if m.group("suf") == "re" else "premier"
    return ordinal(n, v.lang, feminine=m.group("suf") == v.feminine_ordinal and bool(v.feminine_ordinal))


def say_range(m: re.Match[str], v: Vocab) -> str:
    return f"{cardinal(int(m.group(1)), v.lang)} {v.words['to']} {cardinal(int(m.group(2)), v.lang)}"


NUMBER_TOKEN = re.compile(r"(?<![\w])(?P<neg>-)?(?P<num>\d{1,3}(?:[,.\u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
                          r"(?![\w])")


def say_number(m: re.Match[str], v: Vocab) -> str:
    raw = m.group("num")
    neg = f"{cardinal(-1, v.lang).split()[0]} " if m.group("neg") and _starts_word(m) else ""
    if m.group("neg") and not neg:
        return m.group(0)
    grouped = _EN_THOUSANDS.fullmatch(raw) if v.decimal_sep == "." else _NON_EN_THOUSANDS.fullmatch(raw)
    if not grouped and re.fullmatch(r"\d+", raw):
        if raw.startswith("0") and len(raw) > 1:
            return neg + digits(raw, v.lang)
        if len(raw) >= 7:
            return neg + grouped_digits(raw, v.lang)
        if len(raw) == 4 and base_language(v.lang) == "en" and YEAR_CONTEXT.search(m.string[: m.start()]):
            return neg + year(int(raw), "en")
        return neg + cardinal(int(raw), v.lang)
    if re.fullmatch(r"\d+[.,]\d+(?:[.,]\d+)+", raw):
        return m.group(0)  # a version number or similar: leave it to the engine
    parsed = parse_number(raw, v)
    if parsed is None:
        return m.group(0)
    whole, frac = parsed
    return neg + (decimal(whole, frac, v.lang) if frac else cardinal(int(whole), v.lang))


def _starts_word(m: re.Match[str]) -> bool:
    start = m.start()
    return start == 0 or m.string[start - 1] in " (\t\n"
