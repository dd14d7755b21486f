#!/usr/bin/env bash
# Chat benchmark: despacio-gateway (two release processes, real Redis, every message stored and
# acked after storage) against a two-instance Socket.IO relay with @socket.io/redis-adapter
# (bench/socketio, no storage, no auth), driven by the same Rust load generator (bench/chat-load).
#  (a) idle: RSS per authenticated connection at 10,000 and 19,500 connections (both servers);
#  (b)+(c) 1,000 pairs on two instances at fixed total rates: latency p50/p99/p99.9, losses,
#      duplicates, for both servers in the same run;
#  (d) reconnect storm: SIGKILL a gateway holding 10,000 connections while messages flow;
#  (e) CPU per process at 8,000 and 12,000 msg/s for both servers.
# Usage: bench/chat.sh [seconds per rate=10] [rates=1000,2000,3000,4000,5000,6000,8000,10000,12000,14000,16000,18000,20000]
# Needs: Redis (scripts/services.sh), Node.js + npm (for the baseline). Open files: 20,000.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
RATES="${2:-1000,2000,3000,4000,5000,6000,8000,10000,12000,14000,16000,18000,20000}"
OUT="bench/results/$(date -u +%Y%m%d)-chat"
. bench/chat-common.sh
(cd bench/socketio && [ -d node_modules ] || npm ci --silent)

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
socketio() { # port prefix → pid
  (cd bench/socketio && PORT="$1" SIO_PREFIX="$2" exec node server.js >/dev/null 2>&1) &
  echo $!
}

echo "== machine" | tee "$OUT/machine.txt"
{ nproc; free -m | head -2; redis-server --version; node --version; uname -r; } >> "$OUT/machine.txt"

# (a) idle connections
: > "$OUT/idle.jsonl"
for target in despacio socketio; do
  for n in 10000 19500; do
    prefix="bench:idle:$RANDOM:"
    if [ "$target" = despacio ]; then pid=$(gateway 18181 "$prefix"); else pid=$(socketio 18181 "$prefix"); fi
    PIDS+=("$pid"); wait_port 18181; sleep 1
    base=$(rss_kib "$pid")
    "$BIN/chat-load" idle --target "$target" --url ws://127.0.0.1:18181 --connections "$n" --prefix "$prefix" > /tmp/chat-idle.out &
    load=$!
    for _ in $(seq 1 600); do grep -q held /tmp/chat-idle.out 2>/dev/null && break; sleep 0.2; done
    sleep 3
    rss=$(rss_kib "$pid")
    echo "{\"target\":\"$target\",\"connections\":$n,\"base_kib\":$base,\"rss_kib\":$rss,\"kib_per_connection\":$(awk "BEGIN{printf \"%.2f\", ($rss-$base)/$n}"),\"load\":$(cat /tmp/chat-idle.out)}" | tee -a "$OUT/idle.jsonl"
    kill -9 "$load" "$pid" 2>/dev/null || true; wait "$load" 2>/dev/null || true
    sleep 1
  done
done

# (b) + (c) fixed rates, both servers, same run
: > "$OUT/rates.jsonl"
for target in despacio socketio; do
  prefix="bench:rate:$RANDOM:"
  if [ "$target" = despacio ]; then a=$(gateway 18181 "$prefix"); b=$(gateway 18182 "$prefix")
  else a=$(socketio 18181 "$prefix"); b=$(socketio 18182 "$prefix"); fi
  PIDS+=("$a" "$b"); wait_port 18181; wait_port 18182; sleep 1
  "$BIN/chat-load" rate --target "$target" --urls ws://127.0.0.1:18181,ws://127.0.0.1:18182 \
    --pairs 1000 --rates "$RATES" --secs "$SECS" --prefix "$prefix" | tee -a "$OUT/rates.jsonl"
  kill -9 "$a" "$b" 2>/dev/null || true
  redis-cli --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli del >/dev/null
  sleep 1
done

# (e) where the CPU goes at fixed rates (both servers): % of one core per process over 5 s
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
redis_pid=$(pgrep -f "redis-server.*6379" | head -1)
: > "$OUT/cpu.jsonl"
for target in despacio socketio; do
  for rate in 8000 12000; do
    prefix="bench:cpu:$RANDOM:"
    if [ "$target" = despacio ]; then a=$(gateway 18181 "$prefix"); b=$(gateway 18182 "$prefix")
    else a=$(socketio 18181 "$prefix"); b=$(socketio 18182 "$prefix"); fi
    PIDS+=("$a" "$b"); wait_port 18181; wait_port 18182; sleep 1
    "$BIN/chat-load" rate --target "$target" --urls ws://127.0.0.1:18181,ws://127.0.0.1:18182 \
      --pairs 1000 --rates "$rate" --secs 14 --prefix "$prefix" > /dev/null 2>&1 &
    load=$!
    sleep 6
    c1=$(cpu "$a"); c2=$(cpu "$b"); cr=$(cpu "$redis_pid"); cl=$(cpu "$load")
    sleep 5
    echo "{\"target\":\"$target\",\"rate\":$rate,\"cpu_percent\":{\"server_a\":$(( ($(cpu "$a")-c1)/5 )),\"server_b\":$(( ($(cpu "$b")-c2)/5 )),\"redis\":$(( ($(cpu "$redis_pid")-cr)/5 )),\"load_generator\":$(( ($(cpu "$load")-cl)/5 ))}}" | tee -a "$OUT/cpu.jsonl"
    wait "$load" || true
    kill -9 "$a" "$b" 2>/dev/null || true
    redis-cli --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli del >/dev/null
  done
done

# (d) reconnect storm
prefix="bench:storm:$RANDOM:"
a=$(gateway 18181 "$prefix"); b=$(gateway 18182 "$prefix"); PIDS+=("$a" "$b")
wait_port 18181; wait_port 18182; sleep 1
"$BIN/chat-load" storm --urls ws://127.0.0.1:18181,ws://127.0.0.1:18182 --clients 10000 \
  --kill-pid "$a" --rate 1000 --prefix "$prefix" | tee "$OUT/storm.json"
kill -9 "$b" 2>/dev/null || true # (else the next storm's second gateway cannot take its port)
while alive "$a" || alive "$b"; do sleep 0.05; done
redis-cli --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli del >/dev/null
# (d') the same storm with clients that wait a random 0–2 s or 0–3 s before reconnecting (what
# the AsyncAPI document asks of clients).
: > "$OUT/storm-jitter.json"
for jitter in 2000 3000; do
  prefix="bench:storm:$RANDOM:"
  a=$(gateway 18181 "$prefix"); b=$(gateway 18182 "$prefix"); PIDS+=("$a" "$b")
  wait_port 18181; wait_port 18182; sleep 1
  "$BIN/chat-load" storm --urls ws://127.0.0.1:18181,ws://127.0.0.1:18182 --clients 10000 \
    --kill-pid "$a" --rate 1000 --jitter-ms "$jitter" --prefix "$prefix" | tee -a "$OUT/storm-jitter.json"
  kill -9 "$b" 2>/dev/null || true
  while alive "$a" || alive "$b"; do sleep 0.05; done
  redis-cli --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli del >/dev/null
done
redis-cli --scan --pattern "bench:idle:*" | xargs -r -n 1000 redis-cli del >/dev/null
echo "results in $OUT"
