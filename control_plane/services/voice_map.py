"""A tenant's voice map: other providers' voice names -> voices of the tenant.

Clients built for OpenAI (Pipecat's OpenAITTSService refuses anything else) can only name OpenAI's
voices; the map lets "nova" speak with one of the tenant's cloned voices. A name that is not mapped
speaks with the built-in default voice. Other providers' voice ids are keyed with their provider's
prefix ("cartesia:<voice id>"), so one map serves every compatible surface. Stored as JSON text on
the tenant row.
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
MAX_ENTRIES = 200
# Keys of other providers' voices: "<provider>:<their voice id>" (checked by the provider's pattern).
VENDOR_KEYS = {
    "cartesia": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
}


def vendor_key(provider: str, voice: str) -> str:
    """The map key of a provider's voice id ("cartesia:a0e99841-..."): ids are case-insensitive here."""
    return f"{provider}:{voice.strip().lower()}"


def _valid_key(key: str) -> bool:
    provider, sep, name = key.partition(":")
    pattern = VENDOR_KEYS.get(provider) if sep else None
    return key in OPENAI_VOICES or (pattern is not None and bool(pattern.match(name)))


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
    """Keys are OpenAI voice names or "<provider>:<voice id>" (case-insensitive), values voice ids; a 422
    names the first bad entry."""
    out: dict[str, str] = {}
    if len(mapping) > MAX_ENTRIES:
        raise InvalidInput("invalid_voice_map", f"voice_map: at most {MAX_ENTRIES} entries")
    for name, voice_id in mapping.items():
        key = name.strip().lower()
        if not _valid_key(key):
            raise InvalidInput("invalid_voice_map",
                               f"voice_map: {name!r} is neither an OpenAI voice name ({', '.join(OPENAI_VOICES)}) "
                               f"nor a provider's voice id ({', '.join(p + ':<voice id>' for p in VENDOR_KEYS)})")
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
