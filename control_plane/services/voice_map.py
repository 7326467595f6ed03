"""A tenant's voice map: other providers' voice names -> voices of the tenant.

Clients built for OpenAI (Pipecat's OpenAITTSService refuses anything else) can only name OpenAI's
voices, Deepgram's clients name an Aura model (`aura-2-thalia-en`, `aura-asteria-en`, ...), and
Cartesia's clients a Cartesia voice id; the map lets "nova", "aura-2-thalia-en" or
"cartesia:<voice id>" speak with one of the tenant's cloned voices, so one map serves every
compatible surface. A name that is not mapped speaks with the built-in default voice. Stored as
JSON text on the tenant row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from control_plane.errors import InvalidInput, NotFound

# Every voice name OpenAI's speech API accepts (2026-12).
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
                 "shimmer", "verse")
MAX_VOICE_ID = 64
# Deepgram's Aura model names: aura-<voice>-<lang> (Aura-1) and aura-2-<voice>-<lang> (Aura-2).
DEEPGRAM_MODEL = re.compile(r"^aura(-2)?-[a-z]+-[a-z]{2}$")
MAX_VOICE_MAP_ENTRIES = 200
# Keys of other providers' voice ids: "<provider>:<their voice id>" (checked by the provider's pattern).
VENDOR_KEYS = {
    "cartesia": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
}


def vendor_key(provider: str, voice: str) -> str:
    """The map key of a provider's voice id ("cartesia:a0e99841-..."): ids are case-insensitive here."""
    return f"{provider}:{voice.strip().lower()}"


def is_mappable(name: str) -> bool:
    """A key the map may hold (lower case): an OpenAI voice name, a Deepgram Aura model name, or a
    "<provider>:<voice id>"."""
    if name in OPENAI_VOICES or (len(name) <= MAX_VOICE_ID and DEEPGRAM_MODEL.match(name) is not None):
        return True
    provider, sep, voice = name.partition(":")
    pattern = VENDOR_KEYS.get(provider) if sep else None
    return pattern is not None and pattern.match(voice) is not None


def parse_voice_map(stored: str | None) -> dict[str, str]:
    """The map from its stored JSON; anything unreadable counts as empty (the column defaults to '{}')."""
    try:
        value = json.loads(stored or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


def dump_voice_map(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(mapping.items())), separators=(",", ":"))


def check_voice_map(mapping: Mapping[str, str]) -> dict[str, str]:
    """Keys are OpenAI voice names, Deepgram Aura model names or "<provider>:<voice id>" (case-insensitive),
    values voice ids; a 422 names the first bad entry."""
    if len(mapping) > MAX_VOICE_MAP_ENTRIES:
        raise InvalidInput("invalid_voice_map", f"voice_map: at most {MAX_VOICE_MAP_ENTRIES} entries")
    out: dict[str, str] = {}
    for name, voice_id in mapping.items():
        key = name.strip().lower()
        if not is_mappable(key):
            raise InvalidInput("invalid_voice_map",
                               f"voice_map: {name!r} is neither an OpenAI voice name ({', '.join(OPENAI_VOICES)}), "
                               "a Deepgram Aura model name (aura-2-<voice>-<lang>, aura-<voice>-<lang>) nor a "
                               f"provider's voice id ({', '.join(p + ':<voice id>' for p in VENDOR_KEYS)})")
        if not isinstance(voice_id, str) or not voice_id.strip() or len(voice_id) > MAX_VOICE_ID:
            raise InvalidInput("invalid_voice_map", f"voice_map: the voice id for {name!r} must be 1-64 characters")
        out[key] = voice_id.strip()
    return out


async def verify_voice_map(voices: Any, tenant_id: str, mapping: Mapping[str, str]) -> dict[str, str]:
    """`check_voice_map`, and every voice must be the tenant's own or a built-in one (`voices` is the
    VoiceService): a map naming another tenant's voice is refused like one naming no voice at all."""
    checked = check_voice_map(mapping)
    for name, voice_id in checked.items():
        try:
            await voices.get(tenant_id, voice_id)
        except NotFound:
            raise InvalidInput("invalid_voice_map", f"voice_map: {name!r} names voice {voice_id}, "
                                                    "which is not one of this tenant's voices") from None
    return checked
