#!/usr/bin/env bash
# Discovery benchmark: seeds N profiles (once per N), starts a release API, then measures
#  - GET /v1/discovery (warm queues, page depths 1-3) with wrk at concurrency 16 and 64,
#  - the same page's SQL straight against PostgreSQL with pgbench (prepared statements, like the API; c=16 and 64),
#  - a hotspot: people within 10 km of central Paris,
#  - POST /v1/swipes throughput,
#  - background preparation cost per person (despacio-api prepare-queues),
#  - EXPLAIN ANALYZE of the preparation and of a page read.
# Usage: bench/discovery.sh [profiles=100000] [seconds per run=20]
# Needs: PostgreSQL + PostGIS, Redis (scripts/services.sh), wrk (apt-get install wrk), pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
SECS="${2:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/despacio/target}"
cargo build --release -q -p api --bins
BIN="$CARGO_TARGET_DIR/release"
DB="despacio_bench_$N"
OUT="bench/results/$(date -u +%Y%m%d)-$N"
mkdir -p "$OUT"
PG="psql -h 127.0.0.1 -U postgres -qAt"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export REDIS_PREFIX="bench:$N:"
export API_ADDR="127.0.0.1:18080"
export OUTBOX_DIR="/tmp/despacio-bench-outbox"
export LOG_FORMAT=json RUST_LOG=warn AUTO_MIGRATE=true
export RATE_LIMITS="login_per_ip=1000000/60,login_per_account=1000/60,swipes_per_minute=1000000/60,likes_per_day=1000000/86400,refresh_per_ip=1000000/60"
API="http://$API_ADDR"

if [ "$($PG -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = "0" ]; then
  $PG -d postgres -c "CREATE DATABASE $DB"
  "$BIN/despacio-api" migrate
  /usr/bin/time -f "seed: %e s wall, %M KiB max RSS" "$BIN/despacio-api" seed --profiles "$N" 2>&1 | tee "$OUT/seed.txt"
fi
$PG -d "$DB" -c "SELECT 'profiles', count(*) FROM profiles UNION ALL SELECT 'swipes', count(*) FROM swipes
  UNION ALL SELECT 'paris_within_10km', count(*) FROM profiles WHERE ST_DWithin(location, ST_SetSRID(ST_MakePoint(2.3522, 48.8566), 4326)::geography, 10000)" | tee "$OUT/data.txt"

# Like a production database: vacuumed (visibility maps set, statistics fresh; autovacuum would
# get there on its own after the seed) and its tables and indexes in the OS page cache
# (pg_prewarm, from PostgreSQL's contrib; this machine's page cache is emptied between runs).
$PG -d "$DB" -c "VACUUM ANALYZE"
$PG -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" -c "SELECT sum(pg_prewarm(c.oid, 'read')) AS pages_prewarmed
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')" | tee "$OUT/prewarm.txt"

# Sampled people: 200 anywhere, 200 in the Paris hotspot (complete, active, not incognito).
$PG -d "$DB" <<SQL
DROP TABLE IF EXISTS bench_users; DROP TABLE IF EXISTS bench_hotspot;
CREATE TABLE bench_users AS SELECT row_number() OVER () AS i, id FROM (
  SELECT u.id FROM users u JOIN settings s ON s.user_id = u.id WHERE NOT s.incognito AND s.snoozed_until IS NULL
  ORDER BY md5(u.id::text) LIMIT 200) x;
CREATE TABLE bench_hotspot AS SELECT row_number() OVER () AS i, id FROM (
  SELECT p.user_id AS id FROM profiles p JOIN settings s ON s.user_id = p.user_id
  WHERE NOT s.incognito AND s.snoozed_until IS NULL
    AND ST_DWithin(p.location, ST_SetSRID(ST_MakePoint(2.3522, 48.8566), 4326)::geography, 10000)
  ORDER BY md5(p.user_id::text) LIMIT 200) x;
CREATE UNIQUE INDEX ON bench_users (i); CREATE UNIQUE INDEX ON bench_hotspot (i);
UPDATE users SET last_active_at = now() WHERE id IN (SELECT id FROM bench_users UNION SELECT id FROM bench_hotspot);
DELETE FROM discovery_state WHERE user_id IN (SELECT id FROM bench_users UNION SELECT id FROM bench_hotspot);
SQL

"$BIN/despacio-api" >"$OUT/api.log" 2>&1 &
API_PID=$!
trap 'kill $API_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "$API/readyz" >/dev/null 2>&1 && break; sleep 0.2; done

# Preparation cost: rebuild the sampled people's queues (the worker's job), timed.
echo "== preparation" | tee "$OUT/prepare.txt"
"$BIN/despacio-api" prepare-queues --limit 400 | tee -a "$OUT/prepare.txt"

tokens_for() { # table -> one access token per line (seeded accounts share one password)
  "$BIN/despacio-api" bench-emails --table "$1" | xargs -P 4 -I{} curl -fs -X POST "$API/v1/auth/login" \
    -H 'content-type: application/json' -d '{"email":"{}","password":"despacio-demo-password"}' \
    | python3 -c 'import json,sys; [print(json.loads(l)["access_token"]) for l in sys.stdin.read().replace("}{", "}\n{").splitlines() if l]'
}
tokens_for bench_users >"$OUT/.tokens"
tokens_for bench_hotspot >"$OUT/.tokens-hotspot"

# Requests: each person's first three pages (their cursors), shuffled by wrk.
requests_for() { # tokens file -> requests file
  while read -r token; do
    cursor=""
    for _ in 1 2 3; do
      printf '%s\t%s\n' "$token" "$cursor"
      cursor=$(curl -fs "$API/v1/discovery?limit=20${cursor:+&cursor=$cursor}" -H "authorization: Bearer $token" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin).get("next_cursor") or "")')
      [ -n "$cursor" ] || break
    done
  done <"$1"
}
requests_for "$OUT/.tokens" >"$OUT/.requests"
requests_for "$OUT/.tokens-hotspot" >"$OUT/.requests-hotspot"

run_wrk() { # name connections requests-file
  echo "== wrk $1 (c=$2, ${SECS}s)" | tee "$OUT/wrk-$1.txt"
  REQUESTS="$3" wrk -t2 -c"$2" -d"${SECS}s" --latency -s bench/discovery.lua "$API" 2>&1 | tee -a "$OUT/wrk-$1.txt"
}
run_pgbench() { # name connections table
  echo "== pgbench $1 (c=$2, ${SECS}s)" | tee "$OUT/pgbench-$1.txt"
  sed "s/bench_users/$3/g" bench/page.sql >"$OUT/.page.sql"
  (cd "$OUT" && rm -f pgbench_log.* && pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$2" -j 2 -T "$SECS" -D nusers=200 -f .page.sql \
      --log --log-prefix=pgbench_log "$DB" 2>&1 | tee -a "pgbench-$1.txt")
  cat "$OUT"/pgbench_log.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "latency p50 %.2f ms, p99 %.2f ms (%d transactions)\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, NR}' | tee -a "$OUT/pgbench-$1.txt"
  rm -f "$OUT"/pgbench_log.*
}

# Warm-up: every pool connection prepares its statements once (not measured).
REQUESTS="$OUT/.requests" wrk -t2 -c32 -d5s -s bench/discovery.lua "$API" >/dev/null 2>&1 || true
REQUESTS="$OUT/.requests-hotspot" wrk -t2 -c32 -d3s -s bench/discovery.lua "$API" >/dev/null 2>&1 || true
run_wrk discovery-c16 16 "$OUT/.requests"
run_pgbench discovery-c16 16 bench_users
run_wrk discovery-c64 64 "$OUT/.requests"
run_pgbench discovery-c64 64 bench_users
run_wrk hotspot-c16 16 "$OUT/.requests-hotspot"
run_pgbench hotspot-c16 16 bench_hotspot

# Swipes: passes from the sampled people on random people of the hotspot.
$PG -d "$DB" -c "SELECT id FROM bench_hotspot" >"$OUT/.targets"
echo "== wrk swipes (c=16, ${SECS}s)" | tee "$OUT/wrk-swipes.txt"
TOKENS="$OUT/.tokens-hotspot" TARGETS="$OUT/.targets" wrk -t2 -c16 -d"${SECS}s" --latency -s bench/swipes.lua "$API" 2>&1 | tee -a "$OUT/wrk-swipes.txt"

# EXPLAIN ANALYZE for one hotspot person.
"$BIN/despacio-api" explain-discovery --email "$("$BIN/despacio-api" bench-emails --table bench_hotspot | head -1)" >"$OUT/explain.txt"
rm -f "$OUT"/.tokens* "$OUT"/.requests* "$OUT"/.targets "$OUT"/.page.sql
echo "results in $OUT"
