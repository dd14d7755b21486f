#!/usr/bin/env bash
# Repeated reconnect storms only (the part of bench/chat.sh whose numbers spread the most from
# run to run): two release gateways on real Redis, 10,000 clients on the first while 1,000 msg/s
# flow, SIGKILL it, every client reconnects to the second and resumes. Each storm is one JSON line
# (chat-load's storm report) in bench/results/<date>-chat-storms/storms.jsonl.
# Usage: bench/chat-storms.sh [storms per jitter=3] [jitters in ms=0,3000]
# (0: every client reconnects the instant its connection drops; 3000: each waits a random
# 0–3 s first, as the AsyncAPI document asks of clients.)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
JITTERS="${2:-0,3000}"
OUT="bench/results/$(date -u +%Y%m%d)-chat-storms"
. bench/chat-common.sh

{ nproc; free -m | head -2; redis-server --version; uname -r; } > "$OUT/machine.txt"
for run in $(seq 1 "$RUNS"); do
  for jitter in ${JITTERS//,/ }; do
    prefix="bench:storm:$RANDOM:"
    a=$(gateway 18181 "$prefix"); b=$(gateway 18182 "$prefix"); PIDS+=("$a" "$b")
    wait_port 18181; wait_port 18182; sleep 1
    "$BIN/chat-load" storm --urls ws://127.0.0.1:18181,ws://127.0.0.1:18182 --clients 10000 \
      --kill-pid "$a" --rate 1000 --jitter-ms "$jitter" --prefix "$prefix" 2>/dev/null \
      | tee -a "$OUT/storms.jsonl"
    kill -9 "$b" 2>/dev/null || true
    # (Gone before the next storm's gateways take the same ports.)
    while alive "$a" || alive "$b"; do sleep 0.05; done
    redis-cli --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli del >/dev/null
  done
done
echo "results in $OUT/storms.jsonl"
