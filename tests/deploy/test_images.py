"""Static checks of the Dockerfiles and .dockerignore (the built images are run in test_stack.py and
test_chart_containers.py)."""

from __future__ import annotations

import re

from .helpers import REPO

CONTROL_PLANE = (REPO / "docker" / "control-plane.Dockerfile").read_text()
TRITON = (REPO / "docker" / "triton.Dockerfile").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _args(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^ARG (\w+)=(\S*)", text, re.M)}


def _last_stage(text: str) -> list[tuple[str, str]]:
    instrs = _instructions(text)
    last_from = max(i for i, (op, _) in enumerate(instrs) if op == "FROM")
    return instrs[last_from:]


def test_control_plane_image() -> None:
    assert _args(CONTROL_PLANE)["BASE_IMAGE"] == "debian:bookworm-slim"
    froms = [rest for op, rest in _instructions(CONTROL_PLANE) if op == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    final = _last_stage(CONTROL_PLANE)
    ops = dict(final)
    assert ops["USER"].split(":")[0] not in {"0", "root"}
    assert ops["EXPOSE"] == "8790"
    assert "/health" in ops["HEALTHCHECK"]
    assert ops["CMD"] == '["tts-gateway", "serve"]'
    assert ops["ENTRYPOINT"] == '["/usr/bin/tini", "--"]'
    assert "COPY --from=build /opt/venv /opt/venv" in CONTROL_PLANE
    assert "requirements/control-plane.txt" in CONTROL_PLANE


def test_triton_image() -> None:
    assert _args(TRITON)["BASE_IMAGE"] == "debian:bookworm-slim"
    assert "nvcr.io" not in TRITON and "git clone" not in TRITON  # pytriton's server and stub, nothing compiled
    final = dict(_last_stage(TRITON))
    assert final["ENTRYPOINT"] == '["/usr/bin/tini", "--"]'
    assert final["USER"] not in {"root", "0"}
    assert "8000" in final["EXPOSE"] and "8001" in final["EXPOSE"] and "8002" in final["EXPOSE"]
    assert "/v2/health/ready" in final["HEALTHCHECK"]
    assert "XTTS_MODEL_PATH=/models/xtts" in TRITON
    assert "requirements/engine.txt" in TRITON
    assert "COPY model_repository model_repository" in TRITON
    # tests ran on the lock: the image installs under it too
    assert "lock.txt" in TRITON and "lock.txt" in CONTROL_PLANE
    # The ~6 GB engine venv exists once on the build machine: the runtime stage builds on the stage
    # that installed it rather than copying it (a copy doubled the disk a fresh build needs).
    froms = [rest for op, rest in _instructions(TRITON) if op == "FROM"]
    assert froms[-1] == "engine AS runtime", froms
    assert not re.search(r"COPY --from=\S+ /opt/engine", TRITON)


def test_ca_bundle_only_as_a_build_secret() -> None:
    for text in (CONTROL_PLANE, TRITON):
        for op, rest in _instructions(text):
            assert "ca-certificates.crt" not in rest, rest
            if op == "RUN" and "pip install" in rest:
                assert "--mount=type=secret,id=ca" in rest, rest
    for op, rest in _instructions(TRITON):
        if op == "COPY":
            assert not re.search(r"\.(pth|pt|onnx|safetensors)\b|/models\b", rest), (
                f"weights must not be baked in: {rest}"
            )


def test_dockerignore_keeps_weights_and_local_state_out() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".cache", "var", ".git", ".tools", "**/*.pth", "**/*.onnx", "**/*.safetensors", ".env"):
        assert required in patterns, required
    assert "model_repository" not in patterns


def test_images_copy_only_what_they_run() -> None:
    def copied(text: str) -> set[str]:
        sources = set()
        for op, rest in _instructions(text):
            if op == "COPY" and "--from=" not in rest:
                parts = [p for p in rest.split() if not p.startswith("--")]
                sources |= {p.rstrip("/") for p in parts[:-1]}
        return sources

    control_plane = copied(CONTROL_PLANE)
    assert {"control_plane", "tts_contract", "schema"} <= control_plane
    assert not control_plane & {"tts_engine", "export", "devtools", "bench", "model_repository", "tests"}
    triton = copied(TRITON)
    assert {"tts_contract", "tts_engine", "model_repository"} <= triton
    assert not triton & {"devtools", "bench", "tests", "schema"}
