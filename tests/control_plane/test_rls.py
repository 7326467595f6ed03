"""Row-level security on a real Postgres, as the API's own login role (no ownership, no BYPASSRLS):
queries with no WHERE clause still see one tenant only, and writes for another tenant are refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from control_plane.adapters.store import Store, VoiceRow
from control_plane.services.keys import hash_key
from control_plane.services.tenants import TenantService
from control_plane.settings import Settings


@pytest.fixture(scope="module")
async def two_tenants(pg_database) -> dict:
    settings = Settings(database_url=pg_database.app_url)
    store = Store.from_settings(settings)
    service = TenantService(store, settings)
    out = {}
    try:
        for label in ("a", "b"):
            row, key = await service.create(f"rls-{label}-{uuid.uuid4().hex[:6]}")
            voice = VoiceRow(id=str(uuid.uuid4()), tenant_id=row.id, name=f"voice-{label}", gpt_cond_latent=b"x",
                             latent_shape="1x1", speaker_embedding=b"y", audio_ciphertext=b"z", audio_nonce=b"n",
                             audio_sample_rate=22050, audio_duration_s=3.0)
            await store.voices.create(row.id, voice)
            out[label] = {"id": row.id, "key": key, "voice": voice.id}
    finally:
        await store.close()
    return out


@pytest.fixture
async def app_conn(pg_database) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_database.app_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _as(conn: asyncpg.Connection, role: str, **settings: str) -> None:
    await conn.execute(f"SET LOCAL ROLE {role}")
    for name, value in settings.items():
        await conn.execute("SELECT set_config($1, $2, true)", f"app.{name}", value)


async def test_login_role_has_no_bypass(pg_database):
    conn = await asyncpg.connect(pg_database.app_url)
    try:
        row = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    finally:
        await conn.close()
    assert (row["rolsuper"], row["rolbypassrls"]) == (False, False)


async def test_a_tenant_sees_only_its_own_rows_without_a_where_clause(app_conn, two_tenants):
    a, b = two_tenants["a"], two_tenants["b"]
    async with app_conn.transaction():
        await _as(app_conn, "tts_app", tenant_id=a["id"])
        voices = await app_conn.fetch("SELECT id, tenant_id FROM voices")
        tenants = await app_conn.fetch("SELECT id FROM tenants")
    assert {str(v["tenant_id"]) for v in voices} == {a["id"]}
    assert str(voices[0]["id"]) == a["voice"]
    assert [str(t["id"]) for t in tenants] == [a["id"]]
    tx = app_conn.transaction()
    await tx.start()
    try:
        await _as(app_conn, "tts_app", tenant_id=b["id"])
        assert await app_conn.fetchval("SELECT count(*) FROM voices WHERE id = $1", uuid.UUID(a["voice"])) == 0
        # Updates and deletes aimed at A's voice touch nothing.
        assert await app_conn.execute("UPDATE voices SET name = 'stolen' WHERE id = $1",
                                      uuid.UUID(a["voice"])) == "UPDATE 0"
        assert await app_conn.execute("DELETE FROM voices") == "DELETE 1"  # B's own voice only
    finally:
        await tx.rollback()


async def test_no_tenant_setting_sees_nothing(app_conn, two_tenants):
    async with app_conn.transaction():
        await _as(app_conn, "tts_app")
        assert await app_conn.fetchval("SELECT count(*) FROM voices") == 0
        assert await app_conn.fetchval("SELECT count(*) FROM tenants") == 0
        assert await app_conn.fetchval("SELECT count(*) FROM api_keys") == 0


async def test_writes_for_another_tenant_are_refused(app_conn, two_tenants):
    a, b = two_tenants["a"], two_tenants["b"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with app_conn.transaction():
            await _as(app_conn, "tts_app", tenant_id=a["id"])
            await app_conn.execute(
                "INSERT INTO usage_records (id, tenant_id, request_id, endpoint, characters, audio_seconds, "
                "cache_hit, latency_ms, status_code, day, created_at) "
                "VALUES ($1, $2, 'r', 'synthesize', 1, 0, false, 1, 200, current_date, now())",
                uuid.uuid4(), uuid.UUID(b["id"]))
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with app_conn.transaction():
            await _as(app_conn, "tts_app", tenant_id=a["id"])
            await app_conn.execute("UPDATE voices SET tenant_id = $1", uuid.UUID(b["id"]))


async def test_key_lookup_sees_only_the_presented_key(app_conn, two_tenants):
    a = two_tenants["a"]
    async with app_conn.transaction():
        await _as(app_conn, "tts_app", key_hash=hash_key(a["key"]))
        keys = await app_conn.fetch("SELECT tenant_id FROM api_keys")
        assert [str(k["tenant_id"]) for k in keys] == [a["id"]]
        assert await app_conn.fetchval("SELECT count(*) FROM tenants") == 0  # not until the tenant is set


async def test_roles_hold_only_their_privileges(app_conn, two_tenants):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with app_conn.transaction():
            await _as(app_conn, "tts_app", tenant_id=two_tenants["a"]["id"])
            await app_conn.execute("UPDATE tenants SET requests_per_minute = 1000000")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with app_conn.transaction():
            await _as(app_conn, "tts_admin")
            await app_conn.fetch("SELECT * FROM voices")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.fetch("SELECT * FROM voices")  # the login role itself holds nothing (NOINHERIT)
