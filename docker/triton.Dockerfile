# Triton Inference Server with the TTS Gateway models (Python backend): xtts (decoupled streaming,
# continuous batching), xtts_condition and piper (the bundled voice). One image for CPU and GPU nodes.
#
#   DOCKER_BUILDKIT=1 docker build -f docker/triton.Dockerfile -t tts-gateway/triton:0.1.0 .
#
# The server is the `tritonserver` of PyPI's nvidia-pytriton (Triton 2.51, a CUDA 12.6 build with the
# Python backend and its Python 3.11 stub): the same server `make run` and the tests use, no NGC base
# image and nothing compiled. torch is PyPI's default build (CUDA; it also runs on a CPU). Pins come
# from requirements/lock.txt as constraints (less its CPU-only torch line).
#
# BASE_IMAGE: any Debian bookworm image (`make images` makes one with debootstrap where no image
# registry is reachable). A machine whose TLS goes through its own CA passes that bundle as the
# BuildKit secret `ca`; it is never written to a layer.
#
# Weights are NOT part of the image: mount an exported artifact at /models/xtts (XTTS_MODEL_PATH),
# e.g. with `tts-gateway export xtts --from-hub --output /models/xtts` (the chart's init container and
# `docker compose --profile export run --rm export` do that). With no artifact there, XTTS serves the
# tiny random test weights built into the image, flagged as such by /health (`test_weights: true`).

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# engine: the runtime's system packages, the engine virtualenv and the tritonserver layout. The
# later stages build on it, so its ~6 GB exist once on the build machine (a stage copied into a
# fresh runtime stage would hold them twice, in the build cache and in the image).
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS engine
ARG DEBIAN_FRONTEND=noninteractive

# libpython3.11: the backend stub embeds it. Non-root user `triton-server` (uid 1000, as NGC images).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libpython3.11 tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && useradd --uid 1000 --user-group --home-dir /tmp --no-create-home --shell /usr/sbin/nologin triton-server \
 && mkdir -p /models && chown triton-server /models

COPY requirements/engine.txt requirements/control-plane.txt requirements/lock.txt /tmp/requirements/
# One layer: what it moves or deletes is then gone, not kept underneath by overlayfs.
# - torch first and alone (PyPI's CUDA build); the lock pins the CPU build, so its torch line is left out.
# - control-plane.txt: `tts-gateway export` runs in this image (the chart's init container).
# - tritonserver and its backends out of the wheel; the Python 3.11 stub beside the Python backend.
# - torchaudio's .so files link a different torch: XTTS only uses its pure-Python parts.
RUN --mount=type=secret,id=ca \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
 && if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/engine \
 && cd /tmp/requirements && grep -v '^torch==' lock.txt > constraints.txt \
 && /opt/engine/bin/pip install -q "$(grep '^torch==' engine.txt)" \
 && /opt/engine/bin/pip install -q -r engine.txt -r control-plane.txt -c constraints.txt \
 && /opt/engine/bin/pip install -q --no-deps "nvidia-pytriton==$(sed -n 's/^nvidia-pytriton==//p' lock.txt)" \
 && /opt/engine/bin/pip uninstall -q -y pip setuptools wheel \
 && cd / && rm -rf /tmp/requirements \
 && site=/opt/engine/lib/python3.11/site-packages \
 && mkdir -p /opt/tritonserver \
 && mv "$site/pytriton/tritonserver/bin" "$site/pytriton/tritonserver/backends" /opt/tritonserver/ \
 && cp "$site/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub" \
      /opt/tritonserver/backends/python/ \
 && rm -rf "$site/pytriton/tritonserver/python_backend_stubs" "$site"/torchaudio/lib/*.so \
 && find /opt/engine -name '__pycache__' -prune -exec rm -rf {} + \
 && echo /opt/tts-gateway > "$site/tts-gateway.pth" \
 && printf '#!/opt/engine/bin/python\nimport sys\nfrom control_plane.cli import main\nsys.exit(main())\n' \
      > /opt/engine/bin/tts-gateway && chmod 0755 /opt/engine/bin/tts-gateway

# ---------------------------------------------------------------------------------------------
# tiny: the XTTS test model (real architecture, random weights), served when no export is mounted
# ---------------------------------------------------------------------------------------------
FROM engine AS tiny
COPY tts_contract /opt/tts-gateway/tts_contract
COPY tts_engine /opt/tts-gateway/tts_engine
COPY export /opt/tts-gateway/export
RUN /opt/engine/bin/python -c "from export.xtts import export_tiny; export_tiny('/opt/xtts-tiny')" \
 && chmod -R a+rX /opt/xtts-tiny

# ---------------------------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------------------------
FROM engine AS runtime

LABEL org.opencontainers.image.title="tts-gateway-triton" \
      org.opencontainers.image.description="Triton Inference Server with the TTS Gateway models" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=tiny /opt/xtts-tiny /opt/tts-gateway/xtts-tiny
COPY docker/tritonserver.sh /usr/local/bin/tritonserver

# Sources last: an edit rebuilds these layers only (seconds).
WORKDIR /opt/tts-gateway
COPY tts_contract tts_contract
COPY tts_engine tts_engine
COPY export export
COPY control_plane control_plane
COPY model_repository model_repository

# The stub runs the first `python3` on PATH (the engine venv, which finds the sources through its
# tts-gateway.pth; PYTHONPATH is ignored there). /usr/local/bin/tritonserver picks the artifact.
# Caches go to /tmp, the one writable place under a read-only root filesystem.
ENV PATH=/opt/engine/bin:/usr/local/bin:/opt/tritonserver/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LD_LIBRARY_PATH=/opt/engine/lib/python3.11/site-packages/nvidia_pytriton.libs \
    PYTHONUNBUFFERED=1 \
    PYTHONUTF8=1 \
    TRITON_MODEL_REPOSITORY=/opt/tts-gateway/model_repository \
    XTTS_MODEL_PATH=/models/xtts \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    TTS_HOME=/tmp/tts \
    NUMBA_CACHE_DIR=/tmp/numba \
    MPLCONFIGDIR=/tmp/matplotlib

USER 1000:1000
VOLUME ["/models"]
EXPOSE 8000 8001 8002

HEALTHCHECK --interval=10s --timeout=5s --start-period=300s --retries=5 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["tritonserver", \
     "--model-repository=/opt/tts-gateway/model_repository", \
     "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002", \
     "--allow-metrics=true", "--strict-readiness=true"]
