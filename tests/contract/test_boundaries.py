"""Package boundaries the images rely on: the control plane runs with only control_plane/ and tts_contract/
(docker/control-plane.Dockerfile), and the Triton models import no control-plane code."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_IN_CONTROL_PLANE_IMAGE = {"tts_engine", "export", "devtools", "bench", "model_repository"}
# Modules that still import the engine's re-exports (tts_engine.xtts.languages); each moves to
# tts_contract, and then leaves this list (the test fails while a listed module no longer needs it).
PENDING: set[str] = set()


def _imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports anywhere in its code (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_control_plane_imports_nothing_its_image_lacks():
    offenders = {}
    for path in sorted((REPO / "control_plane").rglob("*.py")):
        bad = _imported_packages(path) & NOT_IN_CONTROL_PLANE_IMAGE
        if bad:
            offenders[str(path.relative_to(REPO))] = bad
    assert set(offenders) <= PENDING, f"imports the control-plane image does not ship: {offenders}"
    assert set(offenders) == PENDING, f"no longer importing the engine, drop from PENDING: {PENDING - set(offenders)}"


def test_models_and_engine_import_no_control_plane_code():
    for folder in ("model_repository", "tts_engine", "tts_contract"):
        for path in sorted((REPO / folder).rglob("*.py")):
            assert not _imported_packages(path) & {"control_plane", "devtools", "bench"}, path


def test_contract_is_standard_library_only():
    allowed = {"tts_contract", "__future__", "collections", "dataclasses", "math", "re", "uuid"}
    for path in sorted((REPO / "tts_contract").rglob("*.py")):
        assert _imported_packages(path) <= allowed, (path, _imported_packages(path) - allowed)
