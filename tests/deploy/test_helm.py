"""helm lint / helm template of helm/tts-gateway, strict Kubernetes 1.30 schema validation and the
chart's contracts (autoscaling metric, GPUs, network policy, secrets, migration hook)."""

from __future__ import annotations

import functools
import json
import sys

import pytest
import yaml

from control_plane.settings import Settings

from .helpers import CHART, KUBE_VERSION, RENDERINGS, VALUES_FILES, DeployTools, find, helm_template, one, run

# Kinds from CRDs: kubernetes-validate has no schema for them, so they are skipped by kind (their
# shape is asserted separately below). Any other kind without a schema fails the check.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PodMonitor")}


@pytest.fixture(scope="module")
def k8s_validate():
    from kubernetes_validate import utils

    # Every validate() call re-reads the (large) schema files; cache them for the run.
    cached = functools.lru_cache(maxsize=None)(utils.schema_contents)
    original = utils.schema_contents
    utils.schema_contents = cached
    yield utils
    utils.schema_contents = original


# --- lint ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", sorted(VALUES_FILES))
def test_helm_lint_strict(deploy_tools: DeployTools, values: str) -> None:
    args = ["-f", str(VALUES_FILES[values])] if VALUES_FILES[values] else []
    proc = run([deploy_tools.helm, "lint", "--strict", CHART, "--kube-version", KUBE_VERSION, *args])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize(
    "bad_value",
    [
        "triton.gpu.count=-1",
        "triton.gpuCount=1",  # typo: unknown key
        "secrets.voiceEncryptionKey=tooshort",
        "secrets.databaseUrl=mysql://x",
        "controlPlane.logLevel=verbose",
        "controlPlane.admission.maxWaitSeconds=soon",
    ],
)
def test_values_schema_rejects_bad_values(deploy_tools: DeployTools, bad_value: str) -> None:
    proc = run([deploy_tools.helm, "template", "tts", CHART, "--set", bad_value])
    assert proc.returncode != 0, f"--set {bad_value} should be rejected by values.schema.json"
    assert "schema" in proc.stderr.lower() or "values don't meet" in proc.stderr.lower(), proc.stderr


# --- rendering + schema validation --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_rendered_manifests_validate_strictly(rendered: dict[str, list[dict]], k8s_validate, name: str) -> None:
    docs = rendered[name]
    assert docs, "nothing rendered"
    validated, skipped, errors = [], [], []
    for doc in docs:
        ident = f"{doc['kind']}/{doc['metadata']['name']}"
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            skipped.append(ident)
            continue
        try:
            k8s_validate.validate(doc, KUBE_VERSION, strict=True)
            validated.append(ident)
        except k8s_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{ident}: {path}: {exc.message}")
        except k8s_validate.SchemaNotFoundError as exc:
            errors.append(f"{ident}: {exc.message}")
    assert not errors, "\n".join(errors)
    assert len(validated) >= 10


@pytest.mark.parametrize("name", ["default", "gpu", "external-db"])
def test_kubernetes_validate_cli(deploy_tools: DeployTools, tmp_path, name: str) -> None:
    """The same check through the CLI (`kubernetes-validate --strict -k 1.30.0 FILE`)."""
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump_all(helm_template(deploy_tools, *RENDERINGS[name])))
    proc = run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBE_VERSION, "--quiet", out])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout


def test_validator_catches_an_invalid_manifest(rendered: dict[str, list[dict]], k8s_validate) -> None:
    deployment = json.loads(json.dumps(one(rendered["default"], "Deployment", "-control-plane")))
    deployment["spec"]["template"]["spec"]["containers"][0]["bogus"] = True
    with pytest.raises(k8s_validate.ValidationError):
        k8s_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_standard_labels_everywhere(rendered: dict[str, list[dict]]) -> None:
    for doc in rendered["default"]:
        labels = doc["metadata"].get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert key in labels, f"{doc['kind']}/{doc['metadata']['name']} lacks {key}"


# --- control plane --------------------------------------------------------------------------------


def _container(deployment: dict, name: str) -> dict:
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return container


def test_control_plane_probes_and_command(rendered: dict[str, list[dict]]) -> None:
    deployment = one(rendered["default"], "Deployment", "-control-plane")
    container = _container(deployment, "control-plane")
    # args under the image's ENTRYPOINT (tini as PID 1): a `command` would replace it
    assert "command" not in container and container["args"] == ["tts-gateway", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["ports"][0]["containerPort"] == 8790
    env = {e["name"]: e for e in container["env"]}
    assert env["TRITON_GRPC_URL"]["value"] == "dns:///tts-tts-gateway-triton-headless.tts.svc:8001"
    assert env["TRITON_HTTP_URL"]["value"] == "http://tts-tts-gateway-triton:8000"
    assert env["ADMISSION_MAX_WAIT_S"]["value"] == "1.0"
    assert container["resources"]["requests"]["cpu"]


def test_pods_run_as_non_root_with_read_only_root(rendered: dict[str, list[dict]]) -> None:
    for name in ("default", "gpu"):
        for deployment in find(rendered[name], "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for container in pod["containers"] + pod.get("initContainers", []):
                sc = container["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False
                assert sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"]["drop"] == ["ALL"]
                assert "requests" in container["resources"]


def test_control_plane_hpa_uses_cpu_and_requests_per_second(rendered: dict[str, list[dict]]) -> None:
    hpa = one(rendered["default"], "HorizontalPodAutoscaler", "-control-plane")
    assert hpa["apiVersion"] == "autoscaling/v2"
    kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    assert kinds["Pods"]["pods"]["metric"]["name"] == "tts_http_requests_per_second"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "tts-tts-gateway-control-plane"
    pdb = one(rendered["default"], "PodDisruptionBudget", "-control-plane")
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "control-plane"


@pytest.mark.parametrize("name", ["default", "external-db"])
def test_migration_job_is_a_pre_install_pre_upgrade_hook(rendered: dict[str, list[dict]], name: str) -> None:
    job = one(rendered[name], "Job", "-migrate")
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "command" not in container and container["args"] == ["tts-gateway", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]


def test_chart_secret_is_created_before_the_migration_hook(rendered: dict[str, list[dict]]) -> None:
    secret = one(rendered["default"], "Secret")
    job = one(rendered["default"], "Job", "-migrate")
    assert "pre-install" in secret["metadata"]["annotations"]["helm.sh/hook"]
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    import base64

    key = base64.b64decode(base64.b64decode(secret["data"]["VOICE_ENCRYPTION_KEY"]))
    assert len(key) == 32, "generated VOICE_ENCRYPTION_KEY must be base64 of 32 bytes"
    assert base64.b64decode(secret["data"]["TTS_ADMIN_TOKEN"])
    assert len(base64.b64decode(secret["data"]["API_KEY_PEPPER"])) >= 32


def test_database_url_lands_in_the_chart_secret(rendered: dict[str, list[dict]]) -> None:
    import base64

    secret = one(rendered["gpu"], "Secret")
    assert base64.b64decode(secret["data"]["DATABASE_URL"]).decode().startswith("postgresql://")
    assert base64.b64decode(secret["data"]["REDIS_URL"]).decode().startswith("redis://")


def test_existing_secret_is_referenced_and_not_rendered(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["external-db"]
    assert find(docs, "Secret") == [], "no Secret may be rendered with secrets.existingSecret"
    workloads = [one(docs, "Deployment", "-control-plane"), one(docs, "Job", "-migrate")]
    for workload in workloads:
        (container,) = [c for c in workload["spec"]["template"]["spec"]["containers"]]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert set(refs) == {"DATABASE_URL", "REDIS_URL", "TTS_ADMIN_TOKEN", "VOICE_ENCRYPTION_KEY", "API_KEY_PEPPER"}
        assert {r["name"] for r in refs.values()} == {"tts-gateway-credentials"}
        assert refs["DATABASE_URL"]["optional"] is False
        assert refs["VOICE_ENCRYPTION_KEY"]["optional"] is False
    # the chart's own secret is the one referenced without existingSecret
    default_deployment = one(rendered["default"], "Deployment", "-control-plane")
    env = _container(default_deployment, "control-plane")["env"]
    names = {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
    assert names == {one(rendered["default"], "Secret")["metadata"]["name"]}


def test_ingress_routes_to_the_control_plane(rendered: dict[str, list[dict]]) -> None:
    assert find(rendered["default"], "Ingress") == []
    ingress = one(rendered["external-db"], "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "tts-tts-gateway-control-plane", "port": {"number": 8790}}
    assert ingress["spec"]["tls"][0]["hosts"] == ["tts.example.com"]


# --- Triton ---------------------------------------------------------------------------------------


def test_triton_probes_ports_and_model_path(rendered: dict[str, list[dict]]) -> None:
    deployment = one(rendered["default"], "Deployment", "-triton")
    container = _container(deployment, "triton")
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "model load needs a generous startupProbe"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["XTTS_MODEL_PATH"] == "/models/xtts"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"] is True
    assert mounts["dshm"]["mountPath"] == "/dev/shm"
    services = {s["metadata"]["name"]: s for s in find(rendered["default"], "Service")}
    ports = {
        p["name"]: p["port"]
        for name in ("tts-tts-gateway-triton", "tts-tts-gateway-triton-metrics")
        for p in services[name]["spec"]["ports"]
    }
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}


def test_default_triton_is_cpu_only_with_export_init(rendered: dict[str, list[dict]]) -> None:
    deployment = one(rendered["default"], "Deployment", "-triton")
    pod = deployment["spec"]["template"]["spec"]
    resources = _container(deployment, "triton")["resources"]
    assert "nvidia.com/gpu" not in resources.get("requests", {})
    assert "nvidia.com/gpu" not in resources.get("limits", {})
    (init,) = pod["initContainers"]
    assert "tts-gateway export xtts --from-hub --output /models/xtts" in init["command"][-1]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert one(rendered["default"], "PersistentVolumeClaim")["metadata"]["name"] == claim


def test_gpu_values_request_nvidia_gpus(rendered: dict[str, list[dict]]) -> None:
    deployment = one(rendered["gpu"], "Deployment", "-triton")
    pod = deployment["spec"]["template"]["spec"]
    resources = _container(deployment, "triton")["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == 1
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert resources["requests"]["cpu"] == "4"  # the values' own requests are kept
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert "podAntiAffinity" in pod["affinity"]
    # weights from the existing claim, no export init container, no chart-made PVC
    assert "initContainers" not in pod
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == "xtts-models"
    assert find(rendered["gpu"], "PersistentVolumeClaim") == []
    assert "--allow-gpu-metrics=true" in _container(deployment, "triton")["args"]


def test_network_policy_admits_only_control_plane_and_scraper(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["default"]
    policy = one(docs, "NetworkPolicy", "-triton")
    triton_pod_labels = one(docs, "Deployment", "-triton")["spec"]["template"]["metadata"]["labels"]
    control_pod_labels = one(docs, "Deployment", "-control-plane")["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= triton_pod_labels.items(), "policy must select the Triton pods"
    assert not selector.items() <= control_pod_labels.items(), "policy must not select the control plane"
    assert policy["spec"]["policyTypes"] == ["Ingress"]

    rules = policy["spec"]["ingress"]
    assert len(rules) == 2
    api_rule, scrape_rule = rules
    (peer,) = api_rule["from"]
    assert set(peer) == {"podSelector"}, "control-plane rule must not open other namespaces"
    assert peer["podSelector"]["matchLabels"].items() <= control_pod_labels.items()
    assert not peer["podSelector"]["matchLabels"].items() <= triton_pod_labels.items()
    assert {p["port"] for p in api_rule["ports"]} == {8000, 8001, 8002}

    (scraper,) = scrape_rule["from"]
    assert scraper["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert scraper["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert [p["port"] for p in scrape_rule["ports"]] == [8002], "the scraper may reach the metrics port only"


def test_triton_hpa_metric_matches_prometheus_adapter_rule(rendered: dict[str, list[dict]]) -> None:
    for name in ("default", "gpu"):
        docs = rendered[name]
        hpa = one(docs, "HorizontalPodAutoscaler", "-triton")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "tts-tts-gateway-triton",
        }
        metric, admission = hpa["spec"]["metrics"]
        assert metric["type"] == "Pods"
        hpa_metric = metric["pods"]["metric"]["name"]
        assert metric["pods"]["target"]["type"] == "AverageValue"

        config = yaml.safe_load(one(docs, "ConfigMap", "-prometheus-adapter-rules")["data"]["config.yaml"])
        produced = {rule["name"]["as"]: rule for rule in config["rules"]}
        assert hpa_metric == "triton_queue_time_per_request_us"
        assert hpa_metric in produced, f"HPA metric {hpa_metric} is not produced by the adapter rules {list(produced)}"
        rule = produced[hpa_metric]
        query = rule["metricsQuery"]
        assert "rate(nv_inference_queue_duration_us{<<.LabelMatchers>>}[1m])" in query
        assert "rate(nv_inference_request_success{<<.LabelMatchers>>}[1m])" in query
        assert (
            query.index("nv_inference_queue_duration_us")
            < query.index("/")
            < query.index("nv_inference_request_success")
        )
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
        assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}

        # The admission signal: an External metric the adapter computes from the gateway's own gauge.
        assert admission["type"] == "External" and admission["external"]["target"]["type"] == "Value"
        external = {rule["name"]["as"]: rule for rule in config["externalRules"]}
        (admission_rule,) = external.values()
        assert admission["external"]["metric"]["name"] in external
        assert "tts_admission_expected_wait_seconds{<<.LabelMatchers>>}" in admission_rule["metricsQuery"]
        assert float(admission["external"]["target"]["value"]) < Settings.model_fields["admission_max_wait_s"].default

        cp_hpa = one(docs, "HorizontalPodAutoscaler", "-control-plane")
        pods_metrics = [m["pods"]["metric"]["name"] for m in cp_hpa["spec"]["metrics"] if m["type"] == "Pods"]
        assert set(pods_metrics) <= set(produced)


def test_monitoring_crds_only_when_the_api_exists(rendered: dict[str, list[dict]]) -> None:
    # podMonitor.enabled in external-db values, but the cluster did not report the CRD
    assert find(rendered["external-db"], "PodMonitor") == []
    assert find(rendered["default"], "ServiceMonitor") == []
    (pod_monitor,) = find(rendered["external-db-monitoring"], "PodMonitor")
    ports = {e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"]}
    assert ports == {"http", "metrics"}
    # gpu values force them on (assumeMonitoringCRDs) and use ServiceMonitors
    monitors = {m["metadata"]["name"]: m for m in find(rendered["gpu"], "ServiceMonitor")}
    assert set(monitors) == {"tts-tts-gateway-control-plane", "tts-tts-gateway-triton"}
    assert monitors["tts-tts-gateway-triton"]["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitors["tts-tts-gateway-triton"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_notes_explain_the_first_api_key(deploy_tools: DeployTools) -> None:
    proc = run([deploy_tools.helm, "install", "tts", CHART, "--dry-run=client", "--namespace", "tts"])
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert (
        "kubectl -n tts exec deploy/tts-tts-gateway-control-plane -- \\\n     tts-gateway tenants create first"
        in notes
    )
    assert "/admin/v1/tenants" in notes and "api_key" in notes and "tenant_id" in notes
