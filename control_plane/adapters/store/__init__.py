"""The store: tenants, API keys, voices and usage on Postgres (asyncpg) or the embedded SQLite.

    store = Store.from_settings(settings)
    store.tenants.create/get/find_by_name/list/update/revoke
    store.keys.lookup(key_hash)/list/rotate
    store.voices.create(tenant_id, VoiceRow)/get/list/update/delete/count
    store.usage.insert(UsageRow)/daily/characters_since
    store.lexicons.create(tenant_id, LexiconRow)/get/list/update/delete/count

Every call is one transaction; tenant-scoped calls take the tenant id first and filter on it (and on
Postgres also run under row-level security for that tenant: see database.py).
"""

from __future__ import annotations

from control_plane.adapters.store.database import Database
from control_plane.adapters.store.lexicon_repo import LexiconRepo
from control_plane.adapters.store.rows import ApiKeyRow, LexiconRow, TenantRow, UsageRow, VoiceRow, utcnow
from control_plane.adapters.store.tenant_repo import ApiKeyRepo, TenantRepo
from control_plane.adapters.store.usage_repo import UsageRepo
from control_plane.adapters.store.voice_repo import VoiceRepo
from control_plane.settings import Settings

__all__ = ["ApiKeyRow", "LexiconRow", "Store", "TenantRow", "UsageRow", "VoiceRow", "utcnow"]


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.tenants = TenantRepo(db)
        self.keys = ApiKeyRepo(db)
        self.voices = VoiceRepo(db)
        self.usage = UsageRepo(db)
        self.lexicons = LexiconRepo(db)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(Database.from_settings(settings))

    @property
    def backend(self) -> str:
        return "postgres" if self.db.is_postgres else "sqlite"

    async def ping(self) -> None:
        await self.db.ping()

    async def close(self) -> None:
        await self.db.close()
