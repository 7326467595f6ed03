"""Export fixtures: the tiny XTTS-v2 checkpoint, the session's tiny artifact (with ONNX vocoder), loaded offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import no_network

from export.tiny import build_tiny_checkpoint
from tts_engine.xtts.artifact import XttsArtifact, load_artifact


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint") / "tiny", seed=0, with_speakers=True)


@pytest.fixture(scope="session")
def tiny_artifact(tiny_xtts_artifact) -> Path:
    """The session's export_tiny artifact (tests/conftest.py): seed 0, so the same weights as tiny_checkpoint."""
    return tiny_xtts_artifact


@pytest.fixture(scope="session")
def loaded_artifact(tiny_artifact) -> XttsArtifact:
    with no_network():  # the served model must come from local files only
        return load_artifact(tiny_artifact, verify_hashes=True)
