"""Tenant management outside the API: the `tts-gateway tenants` CLI and the dev tenant of `tts-gateway up`."""

from __future__ import annotations

import json
import stat

from control_plane.settings import Settings
from control_plane.tenants_cli import main
from devtools.dev_tenant import ensure_dev_tenant


def _cli(settings: Settings, capsys, *argv: str) -> dict:
    assert main(["--json", *argv], settings=settings) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_create_list_update_rotate_revoke(tmp_path, capsys):
    settings = Settings(tts_data_dir=tmp_path, database_url="")
    created = _cli(settings, capsys, "create", "cli-co", "--rpm", "7", "--max-voices", "2", "--tier", "premium")
    assert created["api_key"].startswith("tts_") and created["limits"]["requests_per_minute"] == 7
    assert (created["tier"], created["weight"]) == ("premium", 3.0)
    assert [t["name"] for t in _cli(settings, capsys, "list")["tenants"]] == ["cli-co"]
    updated = _cli(settings, capsys, "update", "cli-co", "--monthly-characters", "500")
    assert updated["limits"]["monthly_characters"] == 500 and updated["limits"]["max_voices"] == 2
    assert updated["tier"] == "premium"  # kept when not given
    reweighted = _cli(settings, capsys, "update", "cli-co", "--weight", "0.25")
    assert (reweighted["tier"], reweighted["weight"]) == ("custom", 0.25)
    assert main(["update", "cli-co", "--weight", "500"], settings=settings) == 1
    assert "weight must be within" in capsys.readouterr().err
    rotated = _cli(settings, capsys, "rotate-key", created["tenant_id"], "--grace-seconds", "60")
    assert rotated["api_key"] != created["api_key"] and rotated["previous_keys_valid_until"]
    assert _cli(settings, capsys, "revoke", "cli-co")["status"] == "revoked"
    assert main(["revoke", "no-such-tenant"], settings=settings) == 1
    assert "not found" in capsys.readouterr().err


async def test_dev_tenant_key_is_kept_and_reused(tmp_path):
    settings = Settings(tts_data_dir=tmp_path, database_url="")
    key_file = tmp_path / "dev-api-key"
    first = await ensure_dev_tenant(settings, "dev", key_file)
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert await ensure_dev_tenant(settings, "dev", key_file) == first
    key_file.write_text("tts_lost-or-stale-key-0000000000\n")  # no longer valid: a new key is issued
    fresh = await ensure_dev_tenant(settings, "dev", key_file)
    assert fresh != first and key_file.read_text().strip() == fresh
