"""Engine and transactions for Postgres (asyncpg) and SQLite (aiosqlite), one code path for both.

Every repository call runs in one transaction opened here. On Postgres that transaction first
switches role (`SET LOCAL ROLE`) so row-level security applies even when the login role owns the
tables or is a superuser (as a compose setup's `postgres` user is):

- DATABASE_APP_ROLE (`tts_app`) for everything a tenant's request does. Its policies
  (schema/migrations/0001_initial.sql) read transaction-local settings: `app.tenant_id`, the tenant
  whose rows it may see and write, and `app.key_hash`, the hash of a presented API key, which lets
  authentication find that one key's row before the tenant is known, and nothing else.
- DATABASE_ADMIN_ROLE (`tts_admin`) for tenant and key management: all of `tenants` and
  `api_keys`, and no privilege at all on voices or usage.

SQLite has no RLS: the repositories pass tenant_id explicitly in every query on both backends, and
on Postgres RLS is the second wall behind those filters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from control_plane.adapters.store.tables import metadata
from control_plane.settings import Settings

SQLITE_FILE = "tts_gateway.db"


def async_url(settings: Settings) -> str:
    """DATABASE_URL as an async SQLAlchemy URL; empty means the embedded SQLite file."""
    url = settings.database_url.strip()
    if not url:
        Path(settings.tts_data_dir).mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{Path(settings.tts_data_dir) / SQLITE_FILE}"
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme in ("postgres", "postgresql"):
        # asyncpg spells libpq's sslmode as ssl.
        query = [("ssl", v) if k == "sslmode" else (k, v) for k, v in parse_qsl(parts.query)]
        return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), parts.fragment))
    if scheme == "sqlite":
        return urlunsplit(("sqlite+aiosqlite", parts.netloc, parts.path, parts.query, parts.fragment))
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (postgresql:// or sqlite://)")


def make_engine(settings: Settings) -> AsyncEngine:
    url = async_url(settings)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
            cur.close()

        return engine
    # Timeouts everywhere: connecting (5 s), each statement (30 s), waiting for a pooled connection (10 s).
    # pool_pre_ping drops connections a restarted server closed, so the pool recovers by itself.
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, pool_timeout=10,
                               connect_args={"timeout": 5, "command_timeout": 30})


class Database:
    def __init__(self, engine: AsyncEngine, app_role: str = "", admin_role: str = "") -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self.app_role = app_role if self.is_postgres else ""
        self.admin_role = admin_role if self.is_postgres else ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(make_engine(settings), settings.database_app_role, settings.database_admin_role)

    @asynccontextmanager
    async def _tx(self, role: str, **scope: str) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            if self.is_postgres:
                if role:
                    quoted = self.engine.dialect.identifier_preparer.quote(role)
                    await conn.execute(sa.text(f"SET LOCAL ROLE {quoted}"))
                for name, value in scope.items():
                    await conn.execute(sa.select(sa.func.set_config(f"app.{name}", value, True)))
            yield conn

    def tenant(self, tenant_id: str) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction that sees only `tenant_id`'s rows (RLS on Postgres)."""
        return self._tx(self.app_role, tenant_id=str(tenant_id))

    def key_lookup(self, key_hash: str) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._tx(self.app_role, key_hash=key_hash)

    def admin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """Tenant and key management (the admin API, the CLI): tenants and api_keys only."""
        return self._tx(self.admin_role)

    async def set_tenant(self, conn: AsyncConnection, tenant_id: str) -> None:
        """Narrow an open transaction to one tenant (after a key lookup found it)."""
        if self.is_postgres:
            await conn.execute(sa.select(sa.func.set_config("app.tenant_id", str(tenant_id), True)))

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def create_all(self) -> None:
        """The embedded SQLite schema, straight from the metadata (Postgres uses schema/migrations).
        A store made by an earlier version gets the columns added since (each one has a server default)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.run_sync(_add_missing_columns)

    async def close(self) -> None:
        await self.engine.dispose()


def _add_missing_columns(conn: sa.Connection) -> None:
    """SQLite's counterpart of the ALTER TABLE ... ADD COLUMN migrations (create_all adds only tables)."""
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if column.server_default is None and not column.nullable:
                raise RuntimeError(f"column {table.name}.{column.name} needs a server default to be added")
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))
