"""The Docker engine, the built images and a compose stack of them, for the container tests.

`make test` builds the images first (`make images`); `ensure_images` runs the same script again
(cached: seconds) so a single test file also works on its own. Nothing here is skipped: a machine
without Docker gets it installed, as `make test` installs Postgres.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from devtools.triton_server import free_ports

from .helpers import REPO, compose_binary

T = TypeVar("T")


def sh(cmd: list[str], *, timeout: float = 600, check: bool = True, env: dict[str, str] | None = None,
       cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def ensure_images() -> dict[str, str]:
    """Docker running and every image built; the image names compose needs (.cache/images.env)."""
    env = dict(os.environ)
    compose = compose_binary()
    if compose is not None:
        env["COMPOSE_BIN"] = str(compose)
    sh(["bash", str(REPO / "scripts" / "build-images.sh")], timeout=3600, env=env)
    images = {}
    for line in (REPO / ".cache" / "images.env").read_text().splitlines():
        name, _, value = line.partition("=")
        images[name] = value
    return images


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds saying what."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
            last = result
        except (httpx.HTTPError, OSError) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


@dataclass
class ComposeStack:
    """docker-compose.yml of this checkout under its own project name and free host ports."""

    project_dir: Path
    images: dict[str, str]
    name: str = field(default_factory=lambda: f"ttsgw-test-{secrets.token_hex(3)}")
    admin_token: str = field(default_factory=lambda: "adm_" + secrets.token_urlsafe(18))
    port: int = 0
    triton_url: str = ""

    def __post_init__(self) -> None:
        self.port, triton_http, triton_metrics = free_ports(3)
        self.triton_url = f"http://127.0.0.1:{triton_http}"
        self.env = {
            **os.environ,
            **self.images,
            "COMPOSE_PROJECT_NAME": self.name,
            "TTS_PUBLISH": f"127.0.0.1:{self.port}",
            "TRITON_HTTP_PUBLISH": f"127.0.0.1:{triton_http}",
            "TRITON_METRICS_PUBLISH": f"127.0.0.1:{triton_metrics}",
            "TTS_ADMIN_TOKEN": self.admin_token,
            "ADMISSION_MAX_WAIT_S": "0",
        }

    @classmethod
    def in_copy(cls, tmp: Path, images: dict[str, str]) -> ComposeStack:
        """A copy of the project files, so that a developer's own .env stays out of the test."""
        shutil.copy(REPO / "docker-compose.yml", tmp / "docker-compose.yml")
        shutil.copytree(REPO / "deploy", tmp / "deploy")
        return cls(project_dir=tmp, images=images)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(["docker", "compose", "--project-directory", str(self.project_dir), *args],
                  timeout=timeout, check=check, env=self.env)

    def up(self) -> float:
        started = time.monotonic()
        self.compose("up", "-d", "--wait", "--no-build", timeout=900)
        return time.monotonic() - started

    def down(self, *, volumes: bool = False) -> None:
        self.compose("down", *(["-v"] if volumes else []), "--remove-orphans", timeout=300)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "80", check=False).stdout

    def container_state(self, service: str) -> dict[str, str]:
        cid = self.compose("ps", "-a", "-q", service).stdout.strip()
        out = sh(["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid]).stdout.split()
        return {"status": out[0], "exit_code": out[1]}
