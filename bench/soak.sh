#!/usr/bin/env bash
# Soak of `envgate serve`: CYCLES audit runs (default 10,000) at a short
# interval, CHECKS file probes (default 10) failing and recovering at
# random, /metrics and the status page asked meanwhile. Prints the
# resident memory after the first tenth of the runs and after the last.
# usage: bench/soak.sh [CYCLES] [CHECKS] [INTERVAL]   (defaults 10000, 10, 50ms)
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLES=${1:-10000}
CHECKS=${2:-10}
INTERVAL=${3:-50ms}
# ENVGATE_BIN=path measures a binary built earlier instead of building one.
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --profile profiling --quiet --bin envgate
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/profiling/envgate
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; [ -n "${FLIP:-}" ] && kill "$FLIP" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/environments" "$WORK/checks" "$WORK/markers"
printf '[project]\nname = "soak"\nenvironments = ["prod"]\n\n[audit]\nfail_after = 1\nrecover_after = 1\n' >"$WORK/envgate.toml"
printf '[markers]\ndir = "%s/markers"\n' "$WORK" >"$WORK/environments/prod.toml"
for i in $(seq "$CHECKS"); do
  touch "$WORK/markers/m$i"
  printf '[[probe]]\nname = "m%d"\nkind = "file"\ntarget = "${markers.dir}/m%d"\n\n' "$i" "$i" >>"$WORK/checks/probes.toml"
done

"$BIN" -C "$WORK" serve --env prod --listen "127.0.0.1:$PORT" --interval "$INTERVAL" 2>"$WORK/serve.log" &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done
# Checks fail and recover: one marker flips every 100 ms.
( while true; do m="$WORK/markers/m$((RANDOM % CHECKS + 1))"; if [ -e "$m" ]; then rm -f "$m"; else touch "$m"; fi; sleep 0.1; done ) &
FLIP=$!
runs() { curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1=="envgate_serve_runs_total" {print int($2)}'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
first=""
while true; do
  n=$(runs)
  curl -s -o /dev/null "http://127.0.0.1:$PORT/"
  if [ -z "$first" ] && [ "$n" -ge $((CYCLES / 10)) ]; then first=$(rss); echo "after $n runs: RSS $first KiB"; fi
  [ "$n" -ge "$CYCLES" ] && break
  sleep 1
done
last=$(rss)
echo "after $n runs: RSS $last KiB"
python3 -c "import sys; a,b=int(sys.argv[1]),int(sys.argv[2]); print(f'change: {100*(b-a)/a:+.1f}% (limit 10%)'); sys.exit(0 if abs(b-a) <= a/10 else 1)" "$first" "$last"
grep -c '"msg":"audit run"\|info audit run' "$WORK/serve.log" | sed 's/^/log lines of runs: /'
