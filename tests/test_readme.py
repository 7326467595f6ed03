"""The README is the newcomer's contract: its commands and configuration table must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from control_plane.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands() -> None:
    head = README[:1500]
    assert "make run" in head and "make test" in head


def test_every_setting_is_documented() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert not missing, f"README lacks configuration rows for {missing}"


def test_engine_side_environment_variables_are_documented() -> None:
    """Variables the Triton-side code reads straight from the environment (it has no Settings)."""
    names: set[str] = set()
    for folder in ("tts_engine", "model_repository", "export"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            names |= set(re.findall(r"os\.environ(?:\.get)?\(\s*[\"']([A-Z0-9_]+)[\"']", text))
            names |= set(re.findall(r"os\.environ\[\s*[\"']([A-Z0-9_]+)[\"']\s*\]", text))
            names |= set(re.findall(r"os\.getenv\(\s*[\"']([A-Z0-9_]+)[\"']", text))
            names |= set(re.findall(r"^[A-Z_]*ENV\s*=\s*[\"']([A-Z0-9_]+)[\"']", text, re.M))
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert not missing, f"README lacks rows for {missing}"


def test_makefile_targets_named_in_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make ([a-z-]+)`", README)):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"README names `make {target}`, Makefile lacks it"
