"""docs/deploy.md and docs/capacity-planning.md stay accurate to the files they describe."""

from __future__ import annotations

import re

import yaml

from .helpers import CHART, REPO

DEPLOY = (REPO / "docs" / "deploy.md").read_text()
CAPACITY = (REPO / "docs" / "capacity-planning.md").read_text()


def test_referenced_files_exist() -> None:
    for text in (DEPLOY, CAPACITY):
        for path in set(re.findall(r"`((?:helm|deploy|docker|scripts|tests)/[\w./-]+)`", text)):
            assert (REPO / path).exists(), path
    for values in set(re.findall(r"(helm/tts-gateway/ci/values-[\w-]+\.yaml)", DEPLOY)):
        assert (REPO / values).exists(), values


def test_compose_profiles_in_docs_exist() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    profiles = {p for s in compose["services"].values() for p in s.get("profiles", [])}
    documented = set(re.findall(r"--profile (\w+)", DEPLOY))
    assert documented == profiles


def test_values_keys_in_docs_exist() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for text in (DEPLOY, CAPACITY):
        for dotted in set(
            re.findall(r"`((?:triton|controlPlane|secrets|metrics|prometheusAdapter|networkPolicy)\.[\w.]+)`", text)
        ):
            node = values
            for part in dotted.split("."):
                assert isinstance(node, dict) and part in node, f"{dotted} is not a chart value"
                node = node[part]


def test_capacity_doc_has_the_formulas() -> None:
    assert "L = λ × W" in CAPACITY
    assert "GPUs = ceil( L_peak / S × (1 + headroom) )" in CAPACITY
    assert "triton_queue_time_per_request_us" in CAPACITY
    assert "rate(nv_inference_count[5m]) / rate(nv_inference_exec_count[5m])" in CAPACITY
