#!/usr/bin/env bash
# Generates both SDKs (generate.sh) and runs their smoke tests against a real API started here:
# its own database and Redis prefix, a free port, the debug binary (built if missing).
# Needs PostgreSQL + PostGIS and Redis (scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/despacio/target}"
./generate.sh
# The binary of this checkout (a no-op when the tests just built it).
cargo build --quiet --locked --bin despacio-api
api_bin="$CARGO_TARGET_DIR/debug/despacio-api"
suffix="$$_$RANDOM"
db="despacio_sdk_smoke_$suffix"
prefix="sdk-smoke-$suffix:"
pg="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
redis="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  if command -v redis-cli >/dev/null; then
    redis-cli -u "$redis" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$redis" del >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
psql "$pg/postgres" -qc "CREATE DATABASE $db"
DATABASE_URL="$pg/$db" REDIS_URL="$redis" \
  REDIS_PREFIX="$prefix" API_ADDR="127.0.0.1:$port" AUTO_MIGRATE=true \
  OUTBOX_DIR="$work/outbox" OBJECT_STORE_URL="$work/photos" LOG_FORMAT=json \
  "$api_bin" >"$work/api.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  kill -0 "$pid" 2>/dev/null || break
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.25
done
if ! kill -0 "$pid" 2>/dev/null || ! curl -fs "$base/readyz" >/dev/null; then
  echo "the API did not start:" >&2
  tail -n 30 "$work/api.log" >&2
  exit 1
fi
"${SDK_VENV:-$HOME/.cache/despacio/sdk-venv}/bin/python" smoke.py "$base" out/python
npx --no-install tsc -p tsconfig.json
npx --no-install tsx smoke.ts "$base"
