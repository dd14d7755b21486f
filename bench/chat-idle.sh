#!/usr/bin/env bash
# Idle connections only (part (a) of bench/chat.sh, DESPACIO's gateway only): RSS per
# authenticated idle connection at 10,000 and 19,500 connections, repeated — a quick check after
# a change to what each connection holds. One JSON line per measurement in
# bench/results/<date>-chat-idle/idle.jsonl.
# Usage: bench/chat-idle.sh [runs=2]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-2}"
OUT="bench/results/$(date -u +%Y%m%d)-chat-idle"
. bench/chat-common.sh

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
{ nproc; free -m | head -2; redis-server --version; uname -r; } > "$OUT/machine.txt"
for run in $(seq 1 "$RUNS"); do
  for n in 10000 19500; do
    prefix="bench:idle:$RANDOM:"
    pid=$(gateway 18181 "$prefix"); PIDS+=("$pid")
    wait_port 18181; sleep 1
    base=$(rss_kib "$pid")
    "$BIN/chat-load" idle --target despacio --url ws://127.0.0.1:18181 --connections "$n" \
      --prefix "$prefix" > /tmp/chat-idle.out &
    load=$!
    for _ in $(seq 1 600); do grep -q held /tmp/chat-idle.out 2>/dev/null && break; sleep 0.2; done
    sleep 3
    rss=$(rss_kib "$pid")
    echo "{\"run\":$run,\"connections\":$n,\"base_kib\":$base,\"rss_kib\":$rss,\"kib_per_connection\":$(awk "BEGIN{printf \"%.2f\", ($rss-$base)/$n}")}" \
      | tee -a "$OUT/idle.jsonl"
    kill -9 "$load" "$pid" 2>/dev/null || true; wait "$load" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
    redis-cli --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli del >/dev/null
  done
done
