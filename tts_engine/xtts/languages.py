"""Languages XTTS-v2 speaks and its tokenizer's text limits: kept in tts_contract.languages.

Re-exported here for code that still imports them from the engine.
"""

from tts_contract.languages import CHAR_LIMITS, XTTS_LANGUAGES, normalise_language

__all__ = ["CHAR_LIMITS", "XTTS_LANGUAGES", "normalise_language"]
