# Sourced by bench/chat.sh and bench/chat-storms.sh (from the repository's top): builds the
# release gateway and load generator, sets the environment every gateway of a benchmark shares,
# and defines the helpers both scripts use. Expects OUT (the results folder) to be set.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/despacio/target}"
cargo build --release -q -p ws-gateway -p chat-load
BIN="$CARGO_TARGET_DIR/release"
mkdir -p "$OUT"
ulimit -n 20000
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export LOG_FORMAT=json RUST_LOG=warn
export RATE_LIMITS="messages_per_minute=100000000/60"

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# A process that exists and is not a zombie.
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
gateway() { # port prefix → pid
  GATEWAY_ADDR="127.0.0.1:$1" REDIS_PREFIX="$2" "$BIN/despacio-gateway" >/dev/null 2>&1 &
  echo $!
}
