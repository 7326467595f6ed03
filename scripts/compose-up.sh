#!/usr/bin/env bash
# `make compose-up`: the compose stack from the images `make images` built (stand-in Postgres and
# Redis images where no registry is reachable), up and healthy, then where to reach it.
# A first run without .env writes one from .env.example with fresh secrets (admin token, voice
# encryption key, API-key pepper); TTS_ADMIN_TOKEN in the environment wins over .env.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f .env ]; then
    rand() { python3 -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())"; }
    sed -e "s|^TTS_ADMIN_TOKEN=.*|TTS_ADMIN_TOKEN=${TTS_ADMIN_TOKEN:-adm_$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')}|" \
        -e "s|^VOICE_ENCRYPTION_KEY=.*|VOICE_ENCRYPTION_KEY=$(rand)|" \
        -e "s|^API_KEY_PEPPER=.*|API_KEY_PEPPER=$(rand)|" \
        -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')|" \
        .env.example > .env
    chmod 600 .env
    echo "wrote .env (secrets generated; keep it: the voices and keys depend on it)"
fi
set -a
# shellcheck disable=SC1091
. .cache/images.env
set +a
started=$SECONDS
docker compose up -d --wait --no-build
port=$(docker compose port control-plane 8790 | sed 's/.*://')
echo
echo "TTS Gateway is up in $((SECONDS - started)) s: http://localhost:$port  (docs: http://localhost:$port/docs)"
echo "  curl http://localhost:$port/health"
echo "First tenant and API key (the admin token is TTS_ADMIN_TOKEN in .env or your environment):"
echo "  docker compose exec control-plane tts-gateway tenants create first"
echo "  curl -s http://localhost:$port/admin/v1/tenants -H \"Authorization: Bearer \$TTS_ADMIN_TOKEN\" \\"
echo "       -H 'Content-Type: application/json' -d '{\"name\": \"acme\"}'"
echo "Stop with \`make compose-down\` (keeps the data volumes)."
