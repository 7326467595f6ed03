"""Shared fixtures: one tiny XTTS-v2 checkpoint, its export (with the ONNX vocoder) and the loaded artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import no_network

from export.tiny import build_tiny_checkpoint
from export.xtts import export_xtts
from tts_engine.xtts.artifact import XttsArtifact, load_artifact


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint") / "tiny", seed=0, with_speakers=True)


@pytest.fixture(scope="session")
def tiny_artifact(tiny_checkpoint, tmp_path_factory) -> Path:
    return export_xtts(tiny_checkpoint, tmp_path_factory.mktemp("artifacts") / "xtts", test_weights=True)


@pytest.fixture(scope="session")
def loaded_artifact(tiny_artifact) -> XttsArtifact:
    with no_network():  # the served model must come from local files only
        return load_artifact(tiny_artifact, verify_hashes=True)
