#!/usr/bin/env bash
# Generates both SDKs (generate.sh) and runs their smoke tests against a real API started here:
# its own database and Redis prefix, a free port, the debug binary (built if missing).
# Needs PostgreSQL + PostGIS and Redis (scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/despacio/target}"
./generate.sh
api_bin="$CARGO_TARGET_DIR/debug/despacio-api"
[ -x "$api_bin" ] || cargo build --quiet --bin despacio-api
db="despacio_sdk_smoke_$$"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}" \
  REDIS_PREFIX="sdk-smoke-$$:" API_ADDR="127.0.0.1:$port" AUTO_MIGRATE=true \
  OUTBOX_DIR="$work/outbox" OBJECT_STORE_URL="$work/photos" LOG_FORMAT=json \
  "$api_bin" >"$work/api.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.25; done
curl -fs "$base/readyz" >/dev/null || { tail -n 30 "$work/api.log" >&2; exit 1; }
"${SDK_VENV:-$HOME/.cache/despacio/sdk-venv}/bin/python" smoke.py "$base" out/python
npx --no-install tsc -p tsconfig.json
npx --no-install tsx smoke.ts "$base"
