# TTS Gateway control plane: the FastAPI API (`tts-gateway serve`), migrations and tenant admin.
# No model weights and no torch: synthesis happens on Triton (docker/triton.Dockerfile). The image
# holds the runtime package and the contract it shares with the models (control_plane/, tts_contract/)
# plus schema/ for `tts-gateway migrate`; engine code, export and dev tooling stay out.
#
#   DOCKER_BUILDKIT=1 docker build -f docker/control-plane.Dockerfile -t tts-gateway/control-plane:0.1.0 .
#
# BASE_IMAGE: any Debian bookworm image (`make images` uses one made with debootstrap where no image
# registry is reachable). A machine whose TLS goes through its own CA passes that bundle as the
# BuildKit secret `ca` (--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt): pip trusts it during
# the build and it is never written to a layer.
# Configuration is environment only (see .env.example); the container listens on TTS_PORT (8790).

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: a virtualenv with the pinned runtime dependencies (constraints: requirements/lock.txt)
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
# Dependencies first, so that a source edit does not invalidate this layer.
COPY requirements/control-plane.txt requirements/lock.txt /tmp/requirements/
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && /opt/venv/bin/pip install -q -r /tmp/requirements/control-plane.txt -c /tmp/requirements/lock.txt \
 && /opt/venv/bin/pip uninstall -q -y pip setuptools wheel \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && find /opt/venv -path '*/site-packages/*/tests' -prune -exec rm -rf {} + \
 # the project's sources live in /app; the console script imports them from there
 && echo /app > /opt/venv/lib/python3.11/site-packages/tts-gateway.pth \
 && printf '#!/opt/venv/bin/python\nimport sys\nfrom control_plane.cli import main\nsys.exit(main())\n' \
      > /opt/venv/bin/tts-gateway && chmod 0755 /opt/venv/bin/tts-gateway
# Smaller runtime: no test suites, no type stubs.
RUN find /opt/venv -type d -name tests -path '*/site-packages/*' -prune -exec rm -rf {} + \
 && find /opt/venv -name '*.pyi' -delete
# Several wheels ship their extensions with symbol and debug tables (ml_dtypes 24 MB, uvloop, asyncpg,
# rapidjson); the runtime needs neither. Files auditwheel patched (an RPATH into a *.libs folder, e.g.
# numpy's) stay untouched: strip rewrites their ELF layout and breaks them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/* \
 && find /opt/venv -type f -name '*.so*' -not -path '*.libs/*' -exec sh -ec 'for f; do \
      readelf -d "$f" | grep -qE "\((RPATH|RUNPATH)\)" || strip --strip-unneeded "$f"; done' sh {} +

# ---------------------------------------------------------------------------------------------
# runtime: Debian's Python, the venv, the sources; non-root, tini as PID 1
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="tts-gateway-control-plane" \
      org.opencontainers.image.description="TTS Gateway control plane (FastAPI)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates: Debian's public roots, for TLS to a hosted Postgres/Supabase or Redis.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 tts \
 && useradd --system --uid 10001 --gid tts --home-dir /app --shell /usr/sbin/nologin tts \
 && mkdir -p /var/lib/tts-gateway \
 && chown tts:tts /var/lib/tts-gateway

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Sources last: an edit rebuilds these layers only (seconds). `tts-gateway migrate` reads schema/
# relative to the package, i.e. /app/schema.
COPY schema schema
COPY tts_contract tts_contract
COPY control_plane control_plane

ENV PATH=/opt/venv/bin:$PATH \
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

# tini reaps children and forwards SIGTERM, so `docker stop` drains streams instead of waiting 10 s.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["tts-gateway", "serve"]
