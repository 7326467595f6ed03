# syntax=docker/dockerfile:1.7
#
# TTS Gateway control plane: the FastAPI API (`tts-gateway serve`), migrations and tenant admin.
# No model weights and no torch: synthesis happens on Triton (docker/triton.Dockerfile). The image
# holds the runtime package and the contract it shares with the models (control_plane/, tts_contract/)
# plus schema/ for `tts-gateway migrate`; engine code, export and dev tooling stay out.
#
#   docker build -f docker/control-plane.Dockerfile -t tts-gateway/control-plane:0.1.0 .
#
# Configuration is environment only (see .env.example); the container listens on TTS_PORT (8790).

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
# build: a self-contained virtualenv with the pinned runtime dependencies and the project wheel
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first so that source edits do not invalidate this layer.
COPY requirements/control-plane.txt requirements/control-plane.txt
RUN pip install --upgrade pip wheel setuptools \
 && pip install -r requirements/control-plane.txt

COPY pyproject.toml README.md ./
COPY control_plane control_plane
COPY tts_contract tts_contract
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip install --no-deps /wheels/*.whl

# ---------------------------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="tts-gateway-control-plane" \
      org.opencontainers.image.description="TTS Gateway control plane (FastAPI)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 tts \
 && useradd --system --uid 10001 --gid tts --home-dir /app --shell /usr/sbin/nologin tts \
 && mkdir -p /var/lib/tts-gateway \
 && chown tts:tts /var/lib/tts-gateway

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The source tree next to the installed wheel: `tts-gateway migrate` reads schema/ relative to the
# repository root, which is /app here (PYTHONPATH puts these packages first).
COPY --chown=root:root control_plane control_plane
COPY --chown=root:root tts_contract tts_contract
COPY --chown=root:root schema schema

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TTS_HOST=0.0.0.0 \
    TTS_PORT=8790 \
    TTS_DATA_DIR=/var/lib/tts-gateway \
    LOG_LEVEL=INFO

USER 10001:10001
VOLUME ["/var/lib/tts-gateway"]
EXPOSE 8790

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('TTS_PORT', '8790'), timeout=4)"]

CMD ["tts-gateway", "serve"]
