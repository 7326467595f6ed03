"""Languages XTTS-v2 speaks, and the per-language text limits of its tokenizer."""

XTTS_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh", "hu", "ko", "ja", "hi",
)

# Characters per segment before quality drops (the tokenizer's own limits).
CHAR_LIMITS: dict[str, int] = {
    "en": 250, "de": 253, "fr": 273, "es": 239, "it": 213, "pt": 203, "pl": 224, "zh": 82, "ar": 166,
    "cs": 186, "ru": 182, "nl": 251, "tr": 226, "ja": 71, "hu": 224, "ko": 95, "hi": 150,
}


def normalise_language(language: str) -> str:
    """'en-US' -> 'en', 'zh-cn' -> 'zh'. Raises ValueError for a language XTTS does not speak."""
    base = language.strip().lower().split("-")[0].split("_")[0]
    if base not in XTTS_LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; supported: {', '.join(XTTS_LANGUAGES)}")
    return base
