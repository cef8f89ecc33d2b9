#!/bin/sh
# Writes deploy/compose/.env with fresh random secrets, once: an existing .env is left alone
# (its keys seal stored credentials and hash every token; regenerating them would lose both).
set -eu
cd "$(dirname "$0")"
if [ -e .env ]; then
    echo ".env exists: keeping it"
    exit 0
fi
key() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
word() { head -c 24 /dev/urandom | base64 | tr -d '\n/+='; }
umask 077
sed -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$(word)|" \
    -e "s|^VIGIL_TOKEN_KEY=.*|VIGIL_TOKEN_KEY=$(key)|" \
    -e "s|^VIGIL_SECRET_KEYS=.*|VIGIL_SECRET_KEYS=k1:$(key)|" \
    -e "s|^VIGIL_OPERATOR_ADMIN_TOKEN=.*|VIGIL_OPERATOR_ADMIN_TOKEN=$(word)|" \
    -e "s|^GRAFANA_ADMIN_PASSWORD=.*|GRAFANA_ADMIN_PASSWORD=$(word)|" \
    env.example > .env
echo "wrote $(pwd)/.env (mode 600): keep a copy of it with your backups"
