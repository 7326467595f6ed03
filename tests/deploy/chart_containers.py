"""Run a container the chart renders, in the built image, exactly as a kubelet would start it.

`docker run` gets the rendered command/args (command replaces the image's ENTRYPOINT, args its
CMD, as in Kubernetes), the env (secretKeyRef values read from the rendered Secret), the user and
group, a read-only root filesystem, dropped capabilities and no-new-privileges as the security
contexts say, and each mounted volume: emptyDir as a tmpfs (the memory one at /dev/shm as shm), a
PersistentVolumeClaim as a named Docker volume. Probes are then asked the way the kubelet asks.
"""

from __future__ import annotations

import base64
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

import httpx

from .stack import sh


def _docker_size(quantity: str) -> str:
    """A Kubernetes memory quantity (512Mi, 2Gi) as Docker writes it (512m, 2g)."""
    return quantity.replace("Gi", "g").replace("Mi", "m")


def secret_values(docs: list[dict]) -> dict[tuple[str, str], str]:
    out = {}
    for doc in docs:
        if doc.get("kind") == "Secret":
            for key, value in (doc.get("data") or {}).items():
                out[(doc["metadata"]["name"], key)] = base64.b64decode(value).decode()
            for key, value in (doc.get("stringData") or {}).items():
                out[(doc["metadata"]["name"], key)] = value
    return out


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    """Workload name -> pod spec, for every Deployment and Job."""
    return {doc["metadata"]["name"]: doc["spec"]["template"]["spec"]
            for doc in docs if doc.get("kind") in {"Deployment", "Job", "StatefulSet", "DaemonSet"}}


@dataclass
class RunSpec:
    """`docker run` arguments for one rendered container."""

    argv: list[str]
    ports: dict[str, int]  # port name -> containerPort

    @classmethod
    def build(cls, pod: dict, container: dict, *, image: str, name: str, network: str, alias: str,
              secrets: dict[tuple[str, str], str], claims: dict[str, str]) -> RunSpec:
        sec: dict[str, Any] = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        argv = ["docker", "run", "-d", "--name", name, "--network", network, "--network-alias", alias]
        if "runAsUser" in sec:
            argv += ["--user", f"{sec['runAsUser']}:{sec.get('runAsGroup', 0)}"]
        if "fsGroup" in pod.get("securityContext", {}):
            argv += ["--group-add", str(pod["securityContext"]["fsGroup"])]
        if sec.get("readOnlyRootFilesystem"):
            argv.append("--read-only")
        for cap in sec.get("capabilities", {}).get("drop", []):
            argv += ["--cap-drop", cap]
        for cap in sec.get("capabilities", {}).get("add", []):
            argv += ["--cap-add", cap]
        if sec.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        limit = container.get("resources", {}).get("limits", {}).get("memory")
        if limit:
            argv += ["--memory", _docker_size(limit)]
        for env in container.get("env", []):
            if "value" in env:
                argv += ["-e", f"{env['name']}={env['value']}"]
            elif ref := env.get("valueFrom", {}).get("secretKeyRef"):
                value = secrets.get((ref["name"], ref["key"]))
                assert value is not None or ref.get("optional"), f"{name}: secret {ref} not rendered"
                if value is not None:
                    argv += ["-e", f"{env['name']}={value}"]
            else:
                raise AssertionError(f"{name}: env {env['name']} has a source this check does not model")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            path, ro = mount["mountPath"], ",ro" if mount.get("readOnly") else ""
            if "emptyDir" in volume and path == "/dev/shm":
                argv += ["--shm-size", _docker_size(volume["emptyDir"].get("sizeLimit", "64Mi"))]
            elif "emptyDir" in volume:
                argv += ["--tmpfs", f"{path}:rw,exec,mode=1777"]
            elif "persistentVolumeClaim" in volume:
                source = claims[volume["persistentVolumeClaim"]["claimName"]]
                argv += ["--mount", f"type=volume,src={source},dst={path}{ro}"]
            else:
                raise AssertionError(f"{name}: volume {volume} is not modelled")
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
        for port in ports.values():
            argv += ["-p", f"127.0.0.1::{port}"]
        command, args = container.get("command"), container.get("args")
        if command:
            argv += ["--entrypoint", command[0], image, *command[1:], *(args or [])]
        else:
            argv += [image, *(args or [])]
        return cls(argv=argv, ports=ports)


def host_port(container: str, port: int) -> int:
    out = sh(["docker", "port", container, f"{port}/tcp"]).stdout.splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def probe(container: str, spec: RunSpec, probe: dict) -> bool:
    """One probe, as the kubelet runs it: an HTTP GET (2xx/3xx), a TCP connect, or an exec."""
    timeout = probe.get("timeoutSeconds", 1) * 2  # this machine may be slower than a node
    if get := probe.get("httpGet"):
        port = get["port"] if isinstance(get["port"], int) else spec.ports[get["port"]]
        try:
            r = httpx.get(f"http://127.0.0.1:{host_port(container, port)}{get['path']}", timeout=timeout)
        except httpx.HTTPError:
            return False
        return 200 <= r.status_code < 400
    if tcp := probe.get("tcpSocket"):
        port = tcp["port"] if isinstance(tcp["port"], int) else spec.ports[tcp["port"]]
        try:
            socket.create_connection(("127.0.0.1", host_port(container, port)), timeout=timeout).close()
            return True
        except OSError:
            return False
    if exe := probe.get("exec"):
        proc = subprocess.run(["docker", "exec", container, *exe["command"]], capture_output=True, timeout=timeout)
        return proc.returncode == 0
    raise AssertionError(f"unknown probe {probe}")
