"""Every container the chart renders, run in the built images with its rendered spec, answers its probes.

The chart is rendered with the built images, a Postgres and a Redis (the compose stack's images on a
Docker network of their own) as its external database and Redis, and Triton's address overridden to
the container run here. Order as in a cluster: the migration Job to completion, Triton's init
container (the model store already holds an exported artifact, so it must find it and exit 0),
Triton, then the control plane. A chart edit that an image cannot honour (a command missing from the
image, a path the read-only root filesystem refuses, a probe path that does not answer) fails here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .chart_containers import RunSpec, pod_specs, probe, secret_values
from .helpers import DeployTools, helm_template
from .stack import ensure_images, sh, wait_for

RELEASE = "tts"


@dataclass
class Cluster:
    """A Docker network standing in for the cluster, and what runs on it."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    @property
    def network(self) -> str:
        return f"ttsgw-chart-{self.tag}"

    def name(self, what: str) -> str:
        return f"ttsgw-chart-{self.tag}-{what}"

    def cleanup(self) -> None:
        for c in reversed(self.containers):
            sh(["docker", "rm", "-f", "-v", c], check=False)
        for v in self.volumes:
            sh(["docker", "volume", "rm", "-f", v], check=False)
        sh(["docker", "network", "rm", self.network], check=False)


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    return ensure_images()


@pytest.fixture(scope="module")
def cluster(images: dict[str, str]) -> Iterator[Cluster]:
    cluster = Cluster()
    sh(["docker", "network", "create", cluster.network])
    try:
        for alias, image, env in (
            ("postgres", images.get("POSTGRES_IMAGE", "postgres:16.4-alpine3.20"),
             ["POSTGRES_USER=tts", "POSTGRES_PASSWORD=chart-pw", "POSTGRES_DB=tts"]),
            ("redis", images.get("REDIS_IMAGE", "redis:7.4.1-alpine3.20"), []),
        ):
            name = cluster.name(alias)
            cluster.containers.append(name)
            sh(["docker", "run", "-d", "--name", name, "--network", cluster.network, "--network-alias", alias,
                *[a for e in env for a in ("-e", e)], image])
        wait_for("postgres ready", lambda: sh(["docker", "exec", cluster.name("postgres"), "pg_isready", "-U", "tts"],
                                             check=False).returncode == 0, timeout=120, interval=0.5)
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="module")
def chart(deploy_tools: DeployTools, images: dict[str, str]) -> list[dict]:
    def split(ref: str) -> tuple[str, str]:
        repo, _, tag = ref.rpartition(":")
        return repo, tag

    cp_repo, cp_tag = split(images["CONTROL_PLANE_IMAGE"])
    tr_repo, tr_tag = split(images["TRITON_IMAGE"])
    return helm_template(
        deploy_tools, "--set", f"controlPlane.image.repository={cp_repo}", "--set", f"controlPlane.image.tag={cp_tag}",
        "--set", f"triton.image.repository={tr_repo}", "--set", f"triton.image.tag={tr_tag}",
        "--set", "secrets.databaseUrl=postgresql://tts:chart-pw@postgres:5432/tts",
        "--set", "secrets.redisUrl=redis://redis:6379/0",
        "--set", "controlPlane.triton.grpcUrl=triton:8001",
        "--set", "controlPlane.triton.httpUrl=http://triton:8000",
        "--set", "controlPlane.triton.metricsUrl=http://triton:8002/metrics",
        release=RELEASE,
    )


def _only(specs: dict[str, dict], suffix: str) -> dict:
    (pod,) = [spec for name, spec in specs.items() if name.endswith(suffix)]
    return pod


def _run(cluster: Cluster, pod: dict, container: dict, image: str, alias: str, docs: list[dict],
         claims: dict[str, str]) -> tuple[str, RunSpec]:
    name = cluster.name(container["name"])
    spec = RunSpec.build(pod, container, image=image, name=name, network=cluster.network, alias=alias,
                         secrets=secret_values(docs), claims=claims)
    cluster.containers.append(name)
    sh(spec.argv)
    return name, spec


def _exit_code(name: str, timeout: float) -> int:
    proc = sh(["docker", "wait", name], timeout=timeout)
    return int(proc.stdout.strip())


def _logs(name: str) -> str:
    proc = sh(["docker", "logs", "--tail", "60", name], check=False)
    return proc.stdout + proc.stderr


def _pid1(name: str) -> str:
    return sh(["docker", "exec", name, "cat", "/proc/1/comm"]).stdout.strip()


def _wait_probes(name: str, spec: RunSpec, container: dict, timeout: float) -> None:
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        if kind in container:
            try:
                wait_for(f"{name}: {kind}", lambda kind=kind: probe(name, spec, container[kind]), timeout=timeout,
                         interval=1)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{_logs(name)}") from None


def test_every_rendered_container_is_covered(chart: list[dict]) -> None:
    names = {c["name"] for pod in pod_specs(chart).values()
             for c in pod.get("initContainers", []) + pod["containers"]}
    assert names == {"migrate", "export-xtts", "triton", "control-plane"}, names


def test_chart_containers_run_in_the_images(chart: list[dict], cluster: Cluster, images: dict[str, str]) -> None:
    specs = pod_specs(chart)
    migrate_pod = _only(specs, "-migrate")
    (migrate,) = migrate_pod["containers"]
    name, _ = _run(cluster, migrate_pod, migrate, images["CONTROL_PLANE_IMAGE"], "migrate", chart, {})
    assert _exit_code(name, timeout=300) == 0, _logs(name)

    triton_pod = _only(specs, "-triton")
    claims = {}
    for volume in triton_pod["volumes"]:
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            claims[claim] = cluster.name(claim)
            cluster.volumes.append(claims[claim])
    (models,) = claims.values()
    # A model store that already holds an exported artifact (the image's tiny one, copied in).
    sh(["docker", "run", "--rm", "--user", "0", "--mount", f"type=volume,src={models},dst=/models",
        "--entrypoint", "sh", images["TRITON_IMAGE"], "-ec",
        "cp -r /opt/tts-gateway/xtts-tiny /models/xtts && chown -R 1000:1000 /models"])
    for init in triton_pod.get("initContainers", []):
        name, _ = _run(cluster, triton_pod, init, images["TRITON_IMAGE"], init["name"], chart, claims)
        assert _exit_code(name, timeout=300) == 0, _logs(name)
        assert "already holds an artifact" in _logs(name)
    (triton,) = triton_pod["containers"]
    name, spec = _run(cluster, triton_pod, triton, images["TRITON_IMAGE"], "triton", chart, claims)
    _wait_probes(name, spec, triton, timeout=600)
    assert _pid1(name) == "tini"  # the image's init reaps the backend's stub processes
    # The mounted export is served, not the image's fallback.
    assert "serving the tiny TEST weights" not in _logs(name)

    cp_pod = _only(specs, "-control-plane")
    (control_plane,) = cp_pod["containers"]
    name, spec = _run(cluster, cp_pod, control_plane, images["CONTROL_PLANE_IMAGE"], "control-plane", chart, {})
    _wait_probes(name, spec, control_plane, timeout=180)
    assert _pid1(name) == "tini"  # forwards SIGTERM, so a rolling update drains
