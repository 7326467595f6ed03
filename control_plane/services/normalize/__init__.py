"""Text normalisation for speech: numbers, amounts, dates, times, phones, codes, units, abbreviations,
e-mail and web addresses written out as a call centre would say them, in en, es, fr, de, it and pt.

    normalize_text("Your order #A-10293 ships on Jan 5th.", "en-US")
    -> "Your order number A, one zero two nine three ships on January fifth."

Own rules on num2words, not a WFST normaliser: see docs/normalisation.md for why.
"""

from __future__ import annotations

from typing import Literal

from control_plane.services.normalize.pipeline import VOCABS, normalize_text, vocab_for

NormalizeMode = Literal["auto", "on", "off"]
MODES: tuple[str, ...] = ("auto", "on", "off")
LANGUAGES: tuple[str, ...] = tuple(VOCABS)


class NormalizationUnavailable(ValueError):
    """`normalize: "on"` for a language without rules."""


def normalize(text: str, language: str, mode: NormalizeMode = "auto", locale: str | None = None) -> str:
    """`auto`: normalise where the language has rules, pass other languages through as written;
    `on`: the same, but a language without rules is an error; `off`: as written."""
    if mode == "off" or not text:
        return text
    if vocab_for(language) is None:
        if mode == "on":
            raise NormalizationUnavailable(
                f"normalisation is not available for language {language!r} (supported: {', '.join(LANGUAGES)})")
        return text
    return normalize_text(text, language, locale)


__all__ = ["LANGUAGES", "MODES", "NormalizationUnavailable", "NormalizeMode", "normalize", "normalize_text"]
