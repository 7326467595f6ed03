"""schema/migrations on a real Postgres agree with the code's table metadata; migrate is idempotent,
runs without superuser, and refuses an applied file that changed."""

from __future__ import annotations

import shutil

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from control_plane.adapters.store.tables import metadata
from control_plane.migrate import MigrationError, discover, migrate, migrate_postgres
from control_plane.settings import Settings

_PG = postgresql.dialect()


def _type(col: sa.Column) -> str:
    t = col.type.compile(dialect=_PG).lower()
    return {"timestamp with time zone": "timestamp with time zone", "float": "double precision"}.get(t, t) \
        .replace("varchar", "character varying")


async def _catalog(dsn: str) -> dict[str, dict]:
    conn = await asyncpg.connect(dsn)
    try:
        cols = await conn.fetch(
            "SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, "
            "a.attnotnull AS notnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "AND a.attnum > 0 AND NOT a.attisdropped")
        idx = await conn.fetch(
            "SELECT t.relname AS table, i.relname AS index, ix.indisunique AS unique, ix.indisprimary AS primary, "
            "array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(n, o) "
            "      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o) AS columns "
            "FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'")
        fks = await conn.fetch(
            "SELECT conrelid::regclass::text AS table, confrelid::regclass::text AS ref, "
            "pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contype = 'f'")
        rls = await conn.fetch("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                               "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")
    finally:
        await conn.close()
    return {"cols": cols, "idx": idx, "fks": fks, "rls": rls}


async def test_migrated_schema_matches_the_code(pg_database):
    cat = await _catalog(pg_database.superuser_url)
    db_tables = {r["table"] for r in cat["cols"]} - {"schema_migrations"}
    assert db_tables == set(metadata.tables)
    for table in metadata.sorted_tables:
        db_cols = {r["column"]: (r["type"], r["notnull"]) for r in cat["cols"] if r["table"] == table.name}
        code_cols = {c.name: (_type(c), not c.nullable) for c in table.columns}
        assert db_cols == code_cols, table.name

        db_idx = {(tuple(r["columns"]), r["unique"]) for r in cat["idx"] if r["table"] == table.name}
        code_idx = {(tuple(c.name for c in table.primary_key.columns), True)}
        code_idx |= {(tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes}
        code_idx |= {((c.name,), True) for c in table.columns if c.unique}
        assert db_idx == code_idx, table.name
        named = {r["index"] for r in cat["idx"] if r["table"] == table.name}
        assert {i.name for i in table.indexes} <= named, table.name

        db_fks = {(r["ref"], r["def"]) for r in cat["fks"] if r["table"] == table.name}
        code_fks = {(fk.column.table.name,
                     f"FOREIGN KEY ({fk.parent.name}) REFERENCES {fk.column.table.name}({fk.column.name})"
                     + (f" ON DELETE {fk.ondelete}" if fk.ondelete else "")) for fk in table.foreign_keys}
        assert db_fks == code_fks, table.name
    # Row-level security is on, and forced, on every table the code declares.
    assert {r["relname"] for r in cat["rls"] if r["relrowsecurity"] and r["relforcerowsecurity"]} == set(
        metadata.tables)


async def test_migrate_is_idempotent_and_recorded(pg_database):
    assert await migrate(Settings(database_url=pg_database.owner_url)) == []
    conn = await asyncpg.connect(pg_database.superuser_url)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        owner_is_super = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = 'tts_owner'")
    finally:
        await conn.close()
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in discover()]
    assert owner_is_super is False  # the migrations above ran without superuser


async def test_a_changed_applied_migration_is_refused(pg_database, tmp_path):
    for m in discover():
        shutil.copy(m.path, tmp_path / m.path.name)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate_postgres(pg_database.owner_url, {"app_role": "tts_app", "admin_role": "tts_admin"},
                               discover(tmp_path))


async def test_migrate_creates_the_embedded_store(tmp_path):
    assert await migrate(Settings(tts_data_dir=tmp_path / "data", database_url="")) == []
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'tts_gateway.db'}")
    try:
        assert set(sa.inspect(engine).get_table_names()) == set(metadata.tables)
    finally:
        engine.dispose()
