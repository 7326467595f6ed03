"""The embedded SQLite store made by an earlier version gains the columns added since (tenants.voice_map,
tier, weight)."""

from __future__ import annotations

import sqlite3

from control_plane.adapters.store import Store
from control_plane.adapters.store.database import SQLITE_FILE
from control_plane.settings import Settings


async def test_create_all_adds_voice_map_to_an_old_tenants_table(tmp_path):
    db = sqlite3.connect(tmp_path / SQLITE_FILE)
    db.execute("CREATE TABLE tenants (id CHAR(32) PRIMARY KEY, name VARCHAR(200) NOT NULL UNIQUE, "
               "status VARCHAR(16) NOT NULL, requests_per_minute INTEGER NOT NULL, requests_per_hour INTEGER NOT NULL,"
               " requests_per_day INTEGER NOT NULL, max_concurrent_streams INTEGER NOT NULL, monthly_characters "
               "BIGINT NOT NULL, max_voices INTEGER NOT NULL, created_at DATETIME NOT NULL, "
               "updated_at DATETIME NOT NULL)")
    db.execute("INSERT INTO tenants VALUES ('0b6f9c1e5d1a4f439a551d1a7a3f0c11', 'old', 'active', 1, 1, 1, 1, 1, 1, "
               "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    db.commit()
    db.close()
    store = Store.from_settings(Settings(tts_data_dir=tmp_path, database_url=""))
    try:
        await store.db.create_all()
        await store.db.create_all()  # idempotent
        row = await store.tenants.get("0b6f9c1e-5d1a-4f43-9a55-1d1a7a3f0c11", admin=True)
        assert row is not None and row.voice_map == "{}"
        assert (row.tier, row.weight) == ("standard", 1.0)  # existing tenants keep an equal share
        updated = await store.tenants.update(row.id, voice_map='{"nova":"x"}')
        assert updated is not None and updated.voice_map == '{"nova":"x"}'
        updated = await store.tenants.update(row.id, tier="premium", weight=3.0)
        assert updated is not None and (updated.tier, updated.weight) == ("premium", 3.0)
    finally:
        await store.close()
