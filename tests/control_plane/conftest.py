"""Real Postgres and Redis for the control-plane tests, and the app on both of its backends.

- `postgres_server` (session): initdb + pg_ctl into a temp dir on a free port (fsync off), run as
  the `postgres` OS user when the tests run as root (initdb refuses root).
- `pg_database` (module): a fresh database owned by a NON-superuser role (`tts_owner`, CREATEROLE)
  with the migrations applied by that role; the API connects as `tts_gateway`, a plain login role
  granted the app and admin roles (no ownership, no BYPASSRLS).
- `redis_server` (session): redis-server on a free port, no persistence.
- `backend` (module, parametrised): `embedded` (SQLite + in-process limits) or `postgres_redis`.
- `api`: the app on that backend, lifespan run, with an httpx client over ASGI.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.settings import Settings

# Helpers of the fault tests (killable Triton, serve processes) are shared by other folders' tests.
sys.path.insert(0, str(Path(__file__).resolve().parent / "hardening"))

ADMIN_TOKEN = "test-admin-token"
APP_LOGIN = "tts_gateway"
OWNER = "tts_owner"
UNREACHABLE_TRITON = {"triton_grpc_url": "127.0.0.1:9", "triton_http_url": "http://127.0.0.1:9",
                      "triton_metrics_url": "http://127.0.0.1:9/metrics"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install the postgresql package (make system-deps)")
    return path


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresServer:
    port: int
    datadir: Path
    options: str = ""
    log: Path | None = None

    def dsn(self, user: str = "postgres", database: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Fast shutdown (connections are cut) of this session's server; `start()` brings it back."""
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"]),
                       check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.datadir), "-o", self.options, "-l",
                                     str(self.log), "-w", "-t", "60", "start"]), check=True, capture_output=True)

    def psql(self, sql: str, database: str = "postgres") -> None:
        subprocess.run([_pg_bin("psql"), "-q", "-v", "ON_ERROR_STOP=1", self.dsn(database=database), "-c", sql],
                       check=True, capture_output=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="tts-pg-"))
    datadir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust",
                                 "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
    port = _free_port()
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200")
    server = PostgresServer(port, datadir, opts, root / "log")
    server.start()
    server.psql(f"CREATE ROLE {OWNER} LOGIN CREATEROLE CREATEDB PASSWORD 'owner'; "
                f"CREATE ROLE {APP_LOGIN} LOGIN NOINHERIT PASSWORD 'gateway'")
    try:
        yield server
    finally:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PgDatabase:
    server: PostgresServer
    name: str

    @property
    def app_url(self) -> str:
        return self.server.dsn(APP_LOGIN, self.name, "gateway")

    @property
    def owner_url(self) -> str:
        return self.server.dsn(OWNER, self.name, "owner")

    @property
    def superuser_url(self) -> str:
        return self.server.dsn("postgres", self.name)


async def make_pg_database(server: PostgresServer) -> PgDatabase:
    from control_plane.migrate import migrate

    name = f"tts_{uuid.uuid4().hex[:10]}"
    server.psql(f"CREATE DATABASE {name} OWNER {OWNER}")
    db = PgDatabase(server, name)
    await migrate(Settings(database_url=db.owner_url))  # as the non-superuser owner
    server.psql(f"GRANT tts_app, tts_admin TO {APP_LOGIN}")
    return db


@pytest.fixture(scope="module")
async def pg_database(postgres_server: PostgresServer) -> PgDatabase:
    return await make_pg_database(postgres_server)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: install the redis-server package (make system-deps)")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import socket

    deadline = time.monotonic() + 60  # a busy machine can take a while to start it
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
    try:
        yield RedisServer(port, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module", params=["embedded", "postgres_redis"])
async def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Settings overrides for one backend: a fresh store per test module."""
    data_dir = tmp_path_factory.mktemp(f"cp-{request.param}")
    if request.param == "embedded":
        return {"name": "embedded", "tts_data_dir": data_dir, "database_url": "", "redis_url": ""}
    db = await make_pg_database(request.getfixturevalue("postgres_server"))
    redis = request.getfixturevalue("redis_server")
    return {"name": "postgres_redis", "tts_data_dir": data_dir, "database_url": db.app_url, "redis_url": redis.url,
            "pg": db}


def settings_for(backend: dict[str, Any], **overrides: Any) -> Settings:
    values = {k: v for k, v in backend.items() if k not in ("name", "pg")}
    return Settings(**{"tts_admin_token": ADMIN_TOKEN, "log_level": "WARNING", **UNREACHABLE_TRITON,
                       **values, **overrides})


@dataclass
class Api:
    app: Any
    client: httpx.AsyncClient
    settings: Settings

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def tenant(self, **fields: Any) -> tuple[str, str]:
        r = await self.client.post("/admin/v1/tenants", headers=admin_headers(),
                                   json={"name": f"t-{uuid.uuid4().hex[:8]}", **fields})
        assert r.status_code == 201, r.text
        return r.json()["tenant_id"], r.json()["api_key"]


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def past(iso_time: str) -> None:
    """Returns once the wall clock is past `iso_time` (a grace period's end, as the API gave it)."""
    import asyncio
    from datetime import UTC, datetime

    until = datetime.fromisoformat(iso_time.replace("Z", "+00:00"))
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.05)


_CLIENT_NUMBERS = itertools.count(1)


def fresh_client_ip() -> str:
    """A client address no other app of this test session has used. Per-address state (the failed-auth
    window) lives in the session's one Redis for a minute: a random address could meet an earlier test's
    failures there."""
    n = next(_CLIENT_NUMBERS)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


async def start_api(settings: Settings, client_ip: str | None = None) -> tuple[Any, Any, httpx.AsyncClient]:
    """The app started as uvicorn would, with a client calling it from `client_ip` (default: a fresh address)."""
    from control_plane.app import create_app

    client_ip = client_ip or fresh_client_ip()
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app, client=(client_ip, 5555)), base_url="http://gw")
    return app, lifespan, client


@pytest.fixture
async def api(backend: dict[str, Any]) -> AsyncIterator[Api]:
    settings = settings_for(backend)
    app, lifespan, client = await start_api(settings)
    try:
        yield Api(app, client, settings)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
