"""The chart points the control plane at Triton's headless Service, so every ready Triton pod gets streams."""

from __future__ import annotations

from urllib.parse import urlsplit

from .helpers import find, helm_template, one


def _control_plane_env(docs: list[dict]) -> dict[str, str]:
    deployment = one(docs, "Deployment", "-control-plane")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "control-plane"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_control_plane_resolves_the_headless_service(rendered: dict[str, list[dict]]) -> None:
    for name in ("default", "gpu"):
        docs = rendered[name]
        env = _control_plane_env(docs)
        target = env["TRITON_GRPC_URL"]
        assert target.startswith("dns:///"), target
        host, port = target.removeprefix("dns:///").rsplit(":", 1)
        service_name, namespace, svc = host.split(".")
        assert (namespace, svc) == ("tts", "svc")
        headless = one(docs, "Service", "-headless")
        assert headless["metadata"]["name"] == service_name
        spec = headless["spec"]
        assert spec["clusterIP"] == "None" and not spec.get("publishNotReadyAddresses", False)

        # Its records are the Triton pods, and the control plane reaches each pod on the container's ports.
        triton = one(docs, "Deployment", "-triton")
        pod_labels = triton["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"].items() <= pod_labels.items()
        (container,) = [c for c in triton["spec"]["template"]["spec"]["containers"] if c["name"] == "triton"]
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert int(port) == container_ports["grpc"]
        assert urlsplit(env["TRITON_HTTP_URL"]).port == container_ports["http"]
        assert urlsplit(env["TRITON_METRICS_URL"]).port == container_ports["metrics"]
        assert {p["name"]: p["targetPort"] for p in spec["ports"]}["grpc"] == "grpc"
        assert float(env["TRITON_DNS_REFRESH_S"]) > 0


def test_external_triton_override_is_used_as_given(deploy_tools) -> None:
    docs = helm_template(deploy_tools, "--set", "controlPlane.triton.grpcUrl=triton.example:8001",
                         "--set", "controlPlane.triton.dnsRefreshSeconds=2")
    env = _control_plane_env(docs)
    assert env["TRITON_GRPC_URL"] == "triton.example:8001" and env["TRITON_DNS_REFRESH_S"] == "2"
    assert find(docs, "Service", "-headless")  # the chart's Triton still has its headless Service
