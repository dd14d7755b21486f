#!/usr/bin/env bash
# Installs and starts what DESPACIO needs on a Debian machine, when it is missing:
# PostgreSQL 15 with PostGIS 3, Redis 7, and moto (an S3 API) for the object-store tests. Idempotent: a second run changes nothing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_version="${PG_VERSION:-15}"
if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! dpkg -s "postgresql-$pg_version" >/dev/null 2>&1; then
  echo "services: installing PostgreSQL $pg_version"
  apt_install "postgresql-$pg_version"
fi
if ! dpkg -s "postgresql-$pg_version-postgis-3" >/dev/null 2>&1; then
  echo "services: installing PostGIS (postgresql-$pg_version-postgis-3)"
  apt_install "postgresql-$pg_version-postgis-3"
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "services: installing Redis"
  apt_install redis-server
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "services: starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/despacio.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

# An S3-compatible server for the object-store tests (moto, from PyPI), on 127.0.0.1:9100.
S3_PORT="${TEST_S3_PORT:-9100}"
if ! python3 -c "import moto.server, flask" >/dev/null 2>&1; then
  echo "services: installing moto[server] (S3 API for tests)"
  python3 -m pip install -q --disable-pip-version-check "moto[server]==5.*" >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages "moto[server]==5.*" >/dev/null
fi
if ! (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
  echo "services: starting moto_server on 127.0.0.1:$S3_PORT"
  mkdir -p "${TMPDIR:-/tmp}/despacio-moto"
  nohup python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT" >"${TMPDIR:-/tmp}/despacio-moto/moto.log" 2>&1 &
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.2; done
fi

pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "services: PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "services: Redis is not answering on 127.0.0.1:6379" >&2; exit 1; }
# The tests connect as `postgres` without a password (trust on loopback, as on the dev machines).
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1" >/dev/null \
  || { echo "services: cannot connect as postgres@127.0.0.1 (trust auth expected for local runs)" >&2; exit 1; }
(exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null || { echo "services: moto_server is not answering on 127.0.0.1:$S3_PORT" >&2; exit 1; }
echo "services: PostgreSQL + PostGIS, Redis and an S3 API (moto) are ready"
