"""The dev tenant and dev secrets of `tts-gateway up`, kept across runs in TTS_DATA_DIR (owner-only files)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from control_plane.adapters.store import Store
from control_plane.services.tenants import TenantService
from control_plane.settings import Settings

DEV_TENANT = "dev"


def write_secret(path: Path, value: str) -> None:
    """Write `value` to `path`, readable by the owner only (also when the file already existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path`, made (and saved) on first use."""
    if path.is_file():
        return path.read_text().strip()
    value = make()
    write_secret(path, value)
    return value


async def ensure_dev_tenant(settings: Settings, name: str, key_file: Path) -> str:
    """The dev tenant's API key: created once and kept in `key_file` (0600); reused while it still
    authenticates, else (lost database, changed pepper) a fresh key is issued and saved."""
    store = Store.from_settings(settings)
    try:
        if not store.db.is_postgres:
            await store.db.create_all()  # idempotent; Postgres is migrated by `tts-gateway migrate`
        service = TenantService(store, settings)
        key_file = Path(key_file)
        saved = key_file.read_text().strip() if key_file.is_file() else ""
        if saved and await service.authenticate(saved) is not None:
            return saved
        existing = await store.tenants.find_by_name(name)
        if existing is None:
            _, key = await service.create(name)
        else:
            if existing.status != "active":
                await store.tenants.update(existing.id, status="active")
            key, _ = await service.rotate_key(existing.id, 0)
        write_secret(key_file, key)
        return key
    finally:
        await store.close()
