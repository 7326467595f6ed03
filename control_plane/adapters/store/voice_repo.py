"""Cloned voices: conditioning and encrypted reference audio, per tenant."""

from __future__ import annotations

import sqlalchemy as sa

from control_plane.adapters.store.database import Database
from control_plane.adapters.store.rows import VoiceRow, as_values, row_to, utcnow
from control_plane.adapters.store.tables import voices

# Fields that change the voice's sound: replacing them bumps its version (and so its cache keys).
AUDIO_FIELDS = {"gpt_cond_latent", "speaker_embedding", "audio_ciphertext", "audio_nonce", "latent_shape"}
MUTABLE = {"name", "description", "language", "gender", "engine", "audio_sample_rate",
           "audio_duration_s"} | AUDIO_FIELDS


class VoiceRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, tenant_id: str, row: VoiceRow) -> VoiceRow:
        if str(row.tenant_id) != str(tenant_id):
            raise ValueError("a voice is created for the tenant that owns it")
        row.created_at = row.updated_at = utcnow()
        async with self.db.tenant(tenant_id) as conn:
            await conn.execute(voices.insert().values(**as_values(row)))
        return row

    async def get(self, tenant_id: str, voice_id: str) -> VoiceRow | None:
        async with self.db.tenant(tenant_id) as conn:
            row = (await conn.execute(sa.select(voices).where(voices.c.tenant_id == tenant_id,
                                                              voices.c.id == voice_id))).mappings().first()
        return row_to(VoiceRow, row) if row else None

    async def list(self, tenant_id: str) -> list[VoiceRow]:
        async with self.db.tenant(tenant_id) as conn:
            rows = (await conn.execute(sa.select(voices).where(voices.c.tenant_id == tenant_id)
                                       .order_by(voices.c.created_at, voices.c.name))).mappings()
            return [row_to(VoiceRow, r) for r in rows]

    async def count(self, tenant_id: str) -> int:
        async with self.db.tenant(tenant_id) as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(voices)
                                           .where(voices.c.tenant_id == tenant_id))).scalar_one())

    async def update(self, tenant_id: str, voice_id: str, **fields: object) -> VoiceRow | None:
        unknown = set(fields) - MUTABLE
        if unknown:
            raise ValueError(f"not voice fields: {sorted(unknown)}")
        values: dict[str, object] = {**fields, "updated_at": utcnow()}
        if AUDIO_FIELDS & set(fields):
            values["version"] = voices.c.version + 1
        where = sa.and_(voices.c.tenant_id == tenant_id, voices.c.id == voice_id)
        async with self.db.tenant(tenant_id) as conn:
            done = await conn.execute(voices.update().where(where).values(**values))
            if not done.rowcount:
                return None
            row = (await conn.execute(sa.select(voices).where(where))).mappings().first()
        return row_to(VoiceRow, row) if row else None

    async def delete(self, tenant_id: str, voice_id: str) -> bool:
        async with self.db.tenant(tenant_id) as conn:
            done = await conn.execute(voices.delete().where(voices.c.tenant_id == tenant_id, voices.c.id == voice_id))
        return bool(done.rowcount)
