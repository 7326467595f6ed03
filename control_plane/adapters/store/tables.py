"""The tables, defined once. Postgres gets them from schema/migrations (the same columns, plus RLS);
SQLite gets them from this metadata. tests/control_plane/test_schema.py proves the two agree."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

UUID = sa.Uuid(as_uuid=False)
TS = sa.DateTime(timezone=True)

tenants = sa.Table(
    "tenants", metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),  # active | suspended | revoked
    sa.Column("requests_per_minute", sa.Integer, nullable=False),
    sa.Column("requests_per_hour", sa.Integer, nullable=False),
    sa.Column("requests_per_day", sa.Integer, nullable=False),
    sa.Column("max_concurrent_streams", sa.Integer, nullable=False),
    sa.Column("monthly_characters", sa.BigInteger, nullable=False),
    sa.Column("max_voices", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # OpenAI voice name -> voice id, JSON (services/voice_map.py); added by 0002_tenant_voice_map.
    sa.Column("voice_map", sa.Text, nullable=False, server_default="{}"),
    # Priority tier and fair-share weight (services/tiers.py); added by 0004_tenant_fair_share.
    sa.Column("tier", sa.String(32), nullable=False, server_default="standard"),
    sa.Column("weight", sa.Double, nullable=False, server_default="1.0"),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=True),  # set when rotated with a grace period
    sa.Column("revoked_at", TS, nullable=True),
    sa.Index("api_keys_key_hash_key", "key_hash", unique=True),
    sa.Index("api_keys_tenant_id_idx", "tenant_id"),
)

voices = sa.Table(
    "voices", metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("gender", sa.String(16), nullable=True),
    sa.Column("engine", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("gpt_cond_latent", sa.LargeBinary, nullable=False),  # sealed float32 little-endian
    sa.Column("latent_shape", sa.String(32), nullable=False),  # "32x1024"
    sa.Column("speaker_embedding", sa.LargeBinary, nullable=False),  # sealed float32 little-endian
    sa.Column("audio_ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("audio_nonce", sa.LargeBinary, nullable=False),
    sa.Column("audio_sample_rate", sa.Integer, nullable=False),
    sa.Column("audio_duration_s", sa.Double, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("voices_tenant_id_name_key", "tenant_id", "name", unique=True),
)

usage_records = sa.Table(
    "usage_records", metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("engine", sa.String(32), nullable=True),
    sa.Column("voice_id", sa.String(64), nullable=True),
    sa.Column("characters", sa.Integer, nullable=False),
    sa.Column("audio_seconds", sa.Double, nullable=False),
    sa.Column("cache_hit", sa.Boolean, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # UTC day of created_at: the same GROUP BY on both backends
    sa.Column("created_at", TS, nullable=False),
    sa.Index("usage_records_tenant_id_created_at_idx", "tenant_id", "created_at"),
)

lexicons = sa.Table(
    "lexicons", metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # the PLS document as uploaded
    sa.Column("lexemes", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("apply_by_default", sa.Boolean, nullable=False),  # applied to every request of the tenant
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("lexicons_tenant_id_name_key", "tenant_id", "name", unique=True),
)

# Tables whose rows belong to one tenant (RLS on Postgres; an explicit tenant filter everywhere).
TENANT_OWNED = ("api_keys", "voices", "usage_records", "lexicons")
