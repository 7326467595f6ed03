"""API keys: `tts_` + 32 random bytes (urlsafe base64), shown once, stored only as an HMAC.

The hash is HMAC-SHA256 keyed with API_KEY_PEPPER, hex: a stolen database alone cannot be used to
check guesses. The store finds a key by its hash through a unique index; the lookup itself is an
equality on a digest of a 256-bit secret, so it leaks nothing useful through timing, and the
admin token is compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "tts_"
DISPLAY_CHARS = 8  # "tts_" + 8 characters are kept to tell keys apart in listings
BUILTIN_PEPPER = "tts-gateway/api-key/v1"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, pepper: str = "") -> str:
    return hmac.new((pepper or BUILTIN_PEPPER).encode(), key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + DISPLAY_CHARS]


def looks_like_key(key: str) -> bool:
    return key.startswith(KEY_PREFIX) and 20 <= len(key) <= 100


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
