"""`tts-gateway export xtts ...` and the licence gate in front of the hub download."""

from __future__ import annotations

import json

import pytest
from export_helpers import no_network

from export.cli import main
from export.hub import LICENSE_ENV, LicenseNotAccepted, fetch_from_hub


def test_hub_download_refuses_without_the_licence(tmp_path, monkeypatch):
    monkeypatch.setenv(LICENSE_ENV, "1")  # the function asks for an explicit argument, not the environment
    with no_network(), pytest.raises(LicenseNotAccepted, match="CPML"):
        fetch_from_hub(tmp_path / "download")
    assert not (tmp_path / "download").exists()


def test_cli_from_hub_refuses_without_the_licence(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(LICENSE_ENV, raising=False)
    with no_network():
        assert main(["xtts", "--from-hub", "--output", str(tmp_path / "xtts")]) == 1
    assert "Coqui Public Model License" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_a_missing_checkpoint(tmp_path, capsys):
    assert main(["xtts", "--checkpoint", str(tmp_path / "nowhere"), "--output", str(tmp_path / "xtts")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["xtts", "--output", str(tmp_path / "xtts")]) == 2  # no source given
    assert main(["xtts", "--tiny", "--accept-license", "--output", str(tmp_path / "xtts")]) == 2


def test_cli_exports_a_checkpoint(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "xtts"
    assert main(["xtts", "--checkpoint", str(tiny_checkpoint), "--no-onnx", "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["test_weights"] is False and manifest["source"]["kind"] == "checkpoint"
    assert manifest["vocoder"] == {"onnx": None} and len(manifest["speakers"]) == 2
    assert main(["xtts", "--checkpoint", str(tiny_checkpoint), "--output", str(out)]) == 1  # exists
    assert "already exists" in capsys.readouterr().err


def test_cli_tiny_goes_to_export_tiny(tmp_path, capsys):
    # export_tiny itself runs once per session (tests/conftest.py); here only the dispatch and its refusal.
    (tmp_path / "xtts").mkdir()
    assert main(["xtts", "--tiny", "--seed", "3", "--output", str(tmp_path / "xtts")]) == 1
    assert "already exists" in capsys.readouterr().err
