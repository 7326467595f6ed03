"""`tts-gateway migrate`: apply schema/migrations to DATABASE_URL, or create the embedded SQLite tables.

Postgres: every pending file runs in one transaction under an advisory lock (replicas or jobs that
start together wait for each other instead of racing), and is recorded in `schema_migrations` with
its sha256. Running it again applies nothing; an applied file that changed is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from control_plane.settings import REPO_ROOT, Settings, get_settings

MIGRATIONS_DIR = REPO_ROOT / "schema" / "migrations"
LOCK_KEY = 0x7474_7367  # "ttsg": the advisory lock migrations hold
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DEFAULT_ROLES = {"app_role": "tts_app", "admin_role": "tts_admin"}


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE.match(path.name)
        if m is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(m.group(1), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


def role_variables(settings: Settings) -> dict[str, str]:
    roles = {"app_role": settings.database_app_role or DEFAULT_ROLES["app_role"],
             "admin_role": settings.database_admin_role or DEFAULT_ROLES["admin_role"]}
    for var, role in roles.items():
        if not _ROLE.match(role):
            raise MigrationError(f"{var} {role!r}: role names are letters, digits and underscores")
    return roles


def substitute(sql: str, variables: dict[str, str]) -> str:
    """psql's variable interpolation, for the names used here: :'var' (literal), :"var" (identifier)."""
    for name, value in variables.items():
        sql = sql.replace(f":'{name}'", "'" + value.replace("'", "''") + "'")
        sql = sql.replace(f':"{name}"', '"' + value.replace('"', '""') + '"')
    if re.search(r":['\"][a-z_]+['\"]", sql):
        raise MigrationError("a migration uses a variable migrate does not define")
    return sql


async def migrate_postgres(dsn: str, variables: dict[str, str], migrations: list[Migration]) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(16) PRIMARY KEY, "
                "name text NOT NULL, checksum char(64) NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            await conn.execute("REVOKE ALL ON schema_migrations FROM PUBLIC")
            applied = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum "
                                                                              "FROM schema_migrations")}
            done = []
            for m in migrations:
                if m.version in applied:
                    if applied[m.version] != m.checksum:
                        raise MigrationError(f"{m.path.name} changed after it was applied; add a new migration")
                    continue
                await conn.execute(substitute(m.sql, variables))  # simple protocol: many statements
                await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                   m.version, m.name, m.checksum)
                done.append(f"{m.version}_{m.name}")
            return done
    finally:
        await conn.close()


async def migrate(settings: Settings | None = None) -> list[str]:
    """Bring the configured store's schema up to date; returns the migrations applied now."""
    settings = settings or get_settings()
    if not settings.database_url.strip() or settings.database_url.startswith("sqlite"):
        from control_plane.adapters.store import Store

        store = Store.from_settings(settings)
        try:
            await store.db.create_all()
        finally:
            await store.close()
        return []
    return await migrate_postgres(settings.database_url, role_variables(settings), discover())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tts-gateway migrate",
                                     description="Apply schema/migrations to DATABASE_URL (or create the SQLite "
                                                 "tables of the embedded store).")
    parser.add_argument("--list", action="store_true", help="list the migration files and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in discover():
            print(f"{m.version}_{m.name}  sha256:{m.checksum[:12]}")
        return 0
    settings = get_settings()
    try:
        applied = asyncio.run(migrate(settings))
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    if not settings.database_url.strip():
        print(f"embedded store ready: {Path(settings.tts_data_dir) / 'tts_gateway.db'}")
    elif applied:
        print("applied: " + ", ".join(applied))
    else:
        print("schema up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
