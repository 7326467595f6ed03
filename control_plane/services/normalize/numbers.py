"""Numbers as words, per language, on top of num2words (already a dependency).

num2words writes "one thousand, two hundred and thirty-four"; spoken call-centre English drops the
comma and the "and", so the wrappers here tidy its output once, in one place.
"""

from __future__ import annotations

import re
from functools import lru_cache

from num2words import num2words

SUPPORTED = ("en", "es", "fr", "de", "it", "pt")


def base_language(language: str) -> str:
    base = language.replace("_", "-").split("-")[0].lower()
    return base if base in SUPPORTED else "en"


def _n2w(value: int | float, language: str, to: str = "cardinal") -> str:
    lang = base_language(language)
    try:
        words = num2words(value, lang="pt_BR" if language.lower() in ("pt-br", "pt_br") and to != "year" else lang,
                          to=to)
    except (NotImplementedError, OverflowError, KeyError, TypeError, ValueError):
        words = num2words(value, lang="en", to=to)
    words = words.replace(",", "")
    if lang == "en" and to != "year":
        words = re.sub(r"\band (?=\w)", "", words)  # "one hundred twenty", as call centres say it
    return re.sub(r"\s+", " ", words).strip()


@lru_cache(maxsize=4096)
def cardinal(value: int, language: str) -> str:
    if value < 0:
        return f"{MINUS[base_language(language)]} {cardinal(-value, language)}"
    return _n2w(value, language)


@lru_cache(maxsize=2048)
def ordinal(value: int, language: str, feminine: bool = False) -> str:
    words = _n2w(value, language, "ordinal")
    if feminine and base_language(language) in ("es", "it", "pt") and words.endswith("o"):
        words = words[:-1] + "a"
    return words


@lru_cache(maxsize=1024)
def year(value: int, language: str) -> str:
    if base_language(language) == "en" and 1100 <= value <= 2099 and not 2000 <= value <= 2009:
        return _n2w(value, language, "year")
    return cardinal(value, language)


def digit(d: str, language: str) -> str:
    return cardinal(int(d), language)


def digits(text: str, language: str) -> str:
    """Each digit on its own: "407" -> "four zero seven"."""
    return " ".join(digit(d, language) for d in text if d.isdigit())


def grouped_digits(text: str, language: str) -> str:
    """A long digit string read in groups of three or four, the way a phone or account number is read."""
    ds = [d for d in text if d.isdigit()]
    groups: list[list[str]] = []
    n = len(ds)
    if n <= 4:
        groups = [ds]
    else:
        sizes = []
        while n > 0:
            if n in (4, 5, 6, 7, 8):
                sizes += {4: [4], 5: [2, 3], 6: [3, 3], 7: [3, 4], 8: [4, 4]}[n]
                n = 0
            else:
                sizes.append(3)
                n -= 3
        i = 0
        for s in sizes:
            groups.append(ds[i : i + s])
            i += s
    return ", ".join(" ".join(digit(d, language) for d in g) for g in groups)


def decimal(int_part: str, frac: str, language: str) -> str:
    """3.14 -> "three point one four"; in languages that read the fraction as a number ("tres coma
    veinticinco"), a short fraction without a leading zero is read as one."""
    lang = base_language(language)
    whole = cardinal(int(int_part or "0"), language)
    if lang != "en" and len(frac) <= 2 and not frac.startswith("0"):
        tail = cardinal(int(frac), language)
    else:
        tail = digits(frac, language)
    return f"{whole} {DECIMAL_WORD[lang]} {tail}"


MINUS = {"en": "minus", "es": "menos", "fr": "moins", "de": "minus", "it": "meno", "pt": "menos"}
DECIMAL_WORD = {"en": "point", "es": "coma", "fr": "virgule", "de": "Komma", "it": "virgola", "pt": "vírgula"}
