# syntax=docker/dockerfile:1.7
#
# Triton Inference Server with the TTS Gateway models (Python backend): xtts (decoupled streaming,
# GPU), xtts_condition and piper (CPU voice).
#
#   docker build -f docker/triton.Dockerfile -t tts-gateway/triton:0.1.0 .
#
# Triton 2.51.0 (NGC 24.10, CUDA 12.6, Ubuntu 22.04). The NGC image runs its Python backend on
# Python 3.10; the engine (tts_engine, coqui-tts 0.28) targets Python 3.11, so this file builds the
# Python backend stub of the same release against Python 3.11 and installs the engine there.
#
# Weights are NOT part of the image. Mount the exported artifact at /models/xtts
# (XTTS_MODEL_PATH), or populate the volume first with
#   tts-gateway export xtts --from-hub --output /models/xtts
# (the Helm chart's init container and `docker compose run --rm export` do exactly that).

ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
ARG TRITON_BUILD_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3-min
ARG TRITON_REPO_TAG=r24.10
# Extra index for torch wheels built for the image's CUDA, e.g. https://download.pytorch.org/whl/cu126
ARG TORCH_EXTRA_INDEX_URL=

# ---------------------------------------------------------------------------------------------
# stub: triton_python_backend_stub for Python 3.11 (same release branch as the server)
# ---------------------------------------------------------------------------------------------
FROM ${TRITON_BUILD_IMAGE} AS stub
ARG TRITON_REPO_TAG
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      git ca-certificates build-essential cmake rapidjson-dev libarchive-dev zlib1g-dev \
      python3.11 python3.11-dev python3.11-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m ensurepip && python3.11 -m pip install --no-cache-dir "numpy==1.26.4"
RUN git clone --depth 1 --branch ${TRITON_REPO_TAG} https://github.com/triton-inference-server/python_backend /src/python_backend \
 && mkdir -p /src/python_backend/build && cd /src/python_backend/build \
 && cmake -DTRITON_ENABLE_GPU=ON \
          -DTRITON_BACKEND_REPO_TAG=${TRITON_REPO_TAG} \
          -DTRITON_COMMON_REPO_TAG=${TRITON_REPO_TAG} \
          -DTRITON_CORE_REPO_TAG=${TRITON_REPO_TAG} \
          -DPYTHON_EXECUTABLE=/usr/bin/python3.11 \
          -DPython3_EXECUTABLE=/usr/bin/python3.11 \
          -DPython_EXECUTABLE=/usr/bin/python3.11 \
          -DCMAKE_BUILD_TYPE=Release .. \
 && make -j"$(nproc)" triton-python-backend-stub \
 && install -D -m 0755 triton_python_backend_stub /out/triton_python_backend_stub

# ---------------------------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------------------------
FROM ${TRITON_IMAGE} AS runtime
ARG TORCH_EXTRA_INDEX_URL

LABEL org.opencontainers.image.title="tts-gateway-triton" \
      org.opencontainers.image.description="Triton Inference Server with the TTS Gateway models" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv libpython3.11 libsndfile1 ffmpeg curl \
 && rm -rf /var/lib/apt/lists/*

# The Python 3.11 stub replaces the 3.10 one shipped with the image.
COPY --from=stub /out/triton_python_backend_stub /opt/tritonserver/backends/python/triton_python_backend_stub

# Engine environment: torch, coqui-tts, piper, onnxruntime, numpy 1.26.4 (requirements/engine.txt),
# plus the control-plane requirements so `tts-gateway export` runs in this image (init container).
ENV VIRTUAL_ENV=/opt/engine \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3.11 -m venv /opt/engine
COPY requirements/engine.txt requirements/control-plane.txt /tmp/requirements/
RUN /opt/engine/bin/pip install --upgrade pip wheel setuptools \
 && /opt/engine/bin/pip install ${TORCH_EXTRA_INDEX_URL:+--extra-index-url ${TORCH_EXTRA_INDEX_URL}} \
      -r /tmp/requirements/engine.txt -r /tmp/requirements/control-plane.txt \
 && rm -rf /tmp/requirements

WORKDIR /opt/tts-gateway
COPY pyproject.toml README.md ./
# What the models import (tts_contract, tts_engine) and the repository itself, plus export/ and the
# CLI entry point (control_plane/cli.py) for `tts-gateway export` in the init container.
COPY control_plane control_plane
COPY tts_contract tts_contract
COPY tts_engine tts_engine
COPY export export
COPY model_repository model_repository
RUN /opt/engine/bin/pip install --no-deps . \
 && find model_repository -name '__pycache__' -prune -exec rm -rf {} + \
 && mkdir -p /usr/local/lib/python3.11/dist-packages \
 && echo "import site; site.addsitedir('/opt/engine/lib/python3.11/site-packages')" \
      > /usr/local/lib/python3.11/dist-packages/tts-engine.pth

# Non-root: NGC images ship the `triton-server` user (uid 1000); create it when absent.
RUN (id -u triton-server >/dev/null 2>&1 || useradd --create-home --uid 1000 triton-server) \
 && mkdir -p /models /home/triton-server/.cache \
 && chown -R triton-server /models /home/triton-server

# The stub embeds the system Python 3.11; tts-engine.pth adds the engine venv (with its own .pth
# files) as a site directory, and PYTHONPATH puts the project sources first.
ENV PATH=/opt/engine/bin:/opt/tritonserver/bin:$PATH \
    PYTHONPATH=/opt/tts-gateway \
    PYTHONUNBUFFERED=1 \
    TRITON_MODEL_REPOSITORY=/opt/tts-gateway/model_repository \
    XTTS_MODEL_PATH=/models/xtts \
    HF_HOME=/home/triton-server/.cache/huggingface \
    TTS_HOME=/home/triton-server/.cache/tts

USER triton-server
VOLUME ["/models"]
EXPOSE 8000 8001 8002

HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=5 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8000/v2/health/ready"]

CMD ["tritonserver", \
     "--model-repository=/opt/tts-gateway/model_repository", \
     "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002", \
     "--allow-metrics=true", "--allow-gpu-metrics=true", \
     "--strict-readiness=true", \
     "--log-format=default"]
