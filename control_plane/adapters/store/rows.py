"""Plain rows the repositories take and return (ids are canonical UUID strings, times aware UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class TenantRow:
    id: str
    name: str
    status: str = "active"
    requests_per_minute: int = 100
    requests_per_hour: int = 5000
    requests_per_day: int = 50000
    max_concurrent_streams: int = 10
    monthly_characters: int = 1_000_000
    max_voices: int = 10
    created_at: datetime | None = None
    updated_at: datetime | None = None
    voice_map: str = "{}"
    tier: str = "standard"  # services/tiers.py
    weight: float = 1.0  # fair share of the engines under contention (tts_contract.fairness.WEIGHT_RANGE)


@dataclass
class ApiKeyRow:
    id: str
    tenant_id: str
    key_hash: str
    prefix: str
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        expires = aware(self.expires_at)
        return self.revoked_at is None and (expires is None or expires > now)


@dataclass
class VoiceRow:
    id: str
    tenant_id: str
    name: str
    description: str = ""
    language: str = "en"
    gender: str | None = None
    engine: str = "xtts"
    version: int = 1
    gpt_cond_latent: bytes = b""
    latent_shape: str = ""
    speaker_embedding: bytes = b""
    audio_ciphertext: bytes = b""
    audio_nonce: bytes = b""
    audio_sample_rate: int = 0
    audio_duration_s: float = 0.0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class LexiconRow:
    id: str
    tenant_id: str
    name: str
    language: str
    content: str
    lexemes: int
    size_bytes: int
    apply_by_default: bool = True
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class UsageRow:
    id: str
    tenant_id: str
    request_id: str
    endpoint: str
    engine: str | None
    voice_id: str | None
    characters: int
    audio_seconds: float
    cache_hit: bool
    latency_ms: int
    status_code: int
    day: date
    created_at: datetime = field(default_factory=utcnow)


def row_to(cls: type, mapping: Any) -> Any:
    """A result row as one of the dataclasses above (extra columns ignored, times made aware)."""
    m = dict(mapping)
    values = {}
    for f in fields(cls):
        if f.name in m:
            v = m[f.name]
            values[f.name] = aware(v) if isinstance(v, datetime) else v
    for key in ("id", "tenant_id"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    return cls(**values)


def as_values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}
