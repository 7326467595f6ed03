"""Languages each engine speaks, and the per-language text limits of the XTTS tokenizer."""

from __future__ import annotations

XTTS_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh", "hu", "ko", "ja", "hi",
)
PIPER_LANGUAGES: tuple[str, ...] = ("en",)  # the bundled voice is en-US
LANGUAGES: dict[str, tuple[str, ...]] = {"xtts": XTTS_LANGUAGES, "piper": PIPER_LANGUAGES}

# Characters per segment before quality drops (the XTTS tokenizer's own limits).
CHAR_LIMITS: dict[str, int] = {
    "en": 250, "de": 253, "fr": 273, "es": 239, "it": 213, "pt": 203, "pl": 224, "zh": 82, "ar": 166,
    "cs": 186, "ru": 182, "nl": 251, "tr": 226, "ja": 71, "hu": 224, "ko": 95, "hi": 150,
}
DEFAULT_CHAR_LIMIT = 250  # a language without a tokenizer limit of its own

# Scripts written without spaces between words: segments of them are joined with nothing.
NO_SPACE_LANGUAGES: frozenset[str] = frozenset({"zh", "ja"})


def base_language(code: str) -> str:
    """'en-US' -> 'en', 'zh_CN' -> 'zh' (lower case, region dropped); no check that it is spoken."""
    return code.strip().lower().split("-")[0].split("_")[0]


def normalise_language(code: object, engine: str = "xtts") -> str:
    """The base code of `code` if `engine` speaks it; ValueError (naming the supported ones) otherwise."""
    supported = LANGUAGES.get(engine)
    if supported is None:
        raise ValueError(f"unknown engine {engine!r}")
    base = base_language(code) if isinstance(code, str) else ""
    if base not in supported:
        raise ValueError(f"unsupported language {code!r}; supported: {', '.join(supported)}")
    return base


def char_limit(code: str) -> int:
    """The segment length limit for a language code (any region), DEFAULT_CHAR_LIMIT when it has none."""
    return CHAR_LIMITS.get(base_language(code), DEFAULT_CHAR_LIMIT)
