#!/usr/bin/env bash
# `make images`: every image docker-compose.yml and the chart use, built here with BuildKit.
# - Starts (installs) the Docker engine and the compose plugin when missing (scripts/docker-engine.sh).
# - Base image: BASE_IMAGE if set; else debian:bookworm-slim when a registry answers; else one made
#   here with debootstrap (tts-gateway/base:bookworm, once).
# - Without a registry, also stand-ins for the official postgres and redis images (docker/standins/).
# - The host's CA bundle goes to pip as a BuildKit secret (never into a layer).
# Writes the image names compose needs to .cache/images.env. Cached: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
CONTROL_PLANE_IMAGE=${CONTROL_PLANE_IMAGE:-tts-gateway/control-plane:$VERSION}
TRITON_IMAGE=${TRITON_IMAGE:-tts-gateway/triton:$VERSION}
LOCAL_BASE=tts-gateway/base:bookworm
ONLY=${IMAGES:-control-plane triton standins}

scripts/docker-engine.sh --compose "${COMPOSE_BIN:-.venv/lib/python3.11/site-packages/compose/docker-compose}"

registry=0
if [ -z "${BASE_IMAGE:-}" ]; then
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
        || timeout 60 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
        registry=1
        BASE_IMAGE=debian:bookworm-slim
    else
        BASE_IMAGE=$LOCAL_BASE
        if ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
            echo "no image registry reachable: making $LOCAL_BASE with debootstrap (about a minute)"
            docker/base/debootstrap.sh "$LOCAL_BASE"
        fi
    fi
fi

# BuildKit: `docker buildx` where installed, else Debian's docker client (20.10) with DOCKER_BUILDKIT=1.
if docker buildx version >/dev/null 2>&1; then
    build=(docker buildx build --load)
elif [ -x /usr/bin/docker ]; then
    build=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
else
    echo "BuildKit is needed: install docker buildx (or Debian's docker.io)" >&2
    exit 1
fi
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
secret=()
[ -s "$ca" ] && secret=(--secret "id=ca,src=$ca")

image() {  # NAME DOCKERFILE
    local started=$SECONDS
    "${build[@]}" -q "${secret[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$2" -t "$1" . >/dev/null
    printf '  %-40s %5s s  %s\n' "$1" $((SECONDS - started)) \
        "$(docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}')"
}

echo "building images (base $BASE_IMAGE)"
# A first build of every image takes ~9 GB under Docker's root, most of it the Triton image's CUDA
# torch venv: say so up front rather than fail deep inside pip with ENOSPC.
case " $ONLY " in *" triton "*)
    if ! docker image inspect "$TRITON_IMAGE" >/dev/null 2>&1; then
        root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)
        free_gb=$(df -Pk "$root" 2>/dev/null | awk 'NR == 2 {printf "%d", $4 / 1048576}')
        if [ -n "$free_gb" ] && [ "$free_gb" -lt 10 ]; then
            echo "warning: $free_gb GB free under $root; a first build of $TRITON_IMAGE and the other images need" \
                 "about 9 GB. Free space with 'docker system prune' if it fails." >&2
        fi
    fi ;;
esac
mkdir -p .cache
env_file=.cache/images.env
# IMAGES="control-plane" rebuilds a subset: the names of the others stay as they were.
grep -v -E '^(CONTROL_PLANE|TRITON|POSTGRES|REDIS)_IMAGE=' "$env_file" 2>/dev/null > "$env_file.tmp" || true
for what in control-plane triton standins; do
    case " $ONLY " in *" $what "*) ;; *)
        case $what in
            control-plane) grep '^CONTROL_PLANE_IMAGE=' "$env_file" ;;
            triton) grep '^TRITON_IMAGE=' "$env_file" ;;
            standins) grep -E '^(POSTGRES|REDIS)_IMAGE=' "$env_file" ;;
        esac 2>/dev/null >> "$env_file.tmp" || true ;;
    esac
done
for what in $ONLY; do
    case $what in
        control-plane)
            image "$CONTROL_PLANE_IMAGE" docker/control-plane.Dockerfile
            echo "CONTROL_PLANE_IMAGE=$CONTROL_PLANE_IMAGE" >> "$env_file.tmp" ;;
        triton)
            image "$TRITON_IMAGE" docker/triton.Dockerfile
            echo "TRITON_IMAGE=$TRITON_IMAGE" >> "$env_file.tmp" ;;
        standins)
            if [ "$registry" = 0 ]; then
                image tts-gateway/postgres-standin:15 docker/standins/postgres.Dockerfile
                image tts-gateway/redis-standin:7 docker/standins/redis.Dockerfile
                printf 'POSTGRES_IMAGE=%s\nREDIS_IMAGE=%s\n' \
                    tts-gateway/postgres-standin:15 tts-gateway/redis-standin:7 >> "$env_file.tmp"
            fi ;;
    esac
done
mv "$env_file.tmp" "$env_file"
