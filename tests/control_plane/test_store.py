"""The voice repository B's services use, on both backends: all-or-nothing writes, version bumps,
unique names, and the tenant filter on every call."""

from __future__ import annotations

import uuid

import pytest

from control_plane.adapters.store import Store, VoiceRow
from tests.control_plane.conftest import settings_for


@pytest.fixture
async def store(backend):
    s = Store.from_settings(settings_for(backend))
    if not s.db.is_postgres:
        await s.db.create_all()
    try:
        yield s
    finally:
        await s.close()


def _voice(tenant_id: str, name: str) -> VoiceRow:
    return VoiceRow(id=str(uuid.uuid4()), tenant_id=tenant_id, name=name, description="d", language="en",
                    gender="female", gpt_cond_latent=b"\x00" * 16, latent_shape="2x2", speaker_embedding=b"\x01" * 8,
                    audio_ciphertext=b"ct", audio_nonce=b"n" * 12, audio_sample_rate=22050, audio_duration_s=4.5)


async def test_voice_lifecycle_and_isolation(api):
    store = api.services.store
    a, _ = await api.tenant()
    b, _ = await api.tenant()
    v = await store.voices.create(a, _voice(a, "alpha"))
    got = await store.voices.get(a, v.id)
    assert got is not None and got.audio_ciphertext == b"ct" and got.version == 1 and got.created_at.tzinfo
    assert await store.voices.get(b, v.id) is None  # another tenant's voice does not exist for B
    assert await store.voices.count(a) == 1 and await store.voices.count(b) == 0
    assert [x.id for x in await store.voices.list(a)] == [v.id] and await store.voices.list(b) == []

    renamed = await store.voices.update(a, v.id, name="beta")
    assert renamed.name == "beta" and renamed.version == 1  # metadata only: same sound, same version
    replaced = await store.voices.update(a, v.id, audio_ciphertext=b"new", gpt_cond_latent=b"\x02" * 16)
    assert replaced.version == 2 and replaced.audio_ciphertext == b"new"
    assert await store.voices.update(b, v.id, name="stolen") is None
    assert await store.voices.delete(b, v.id) is False
    assert await store.voices.delete(a, v.id) is True
    assert await store.voices.get(a, v.id) is None


async def test_voice_names_are_unique_per_tenant(api):
    store = api.services.store
    a, _ = await api.tenant()
    b, _ = await api.tenant()
    await store.voices.create(a, _voice(a, "same"))
    await store.voices.create(b, _voice(b, "same"))  # other tenants may reuse a name
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        await store.voices.create(a, _voice(a, "same"))
    assert await store.voices.count(a) == 1  # nothing half-written


async def test_a_voice_is_created_only_for_its_own_tenant(store):
    with pytest.raises(ValueError):
        await store.voices.create(str(uuid.uuid4()), _voice(str(uuid.uuid4()), "x"))
