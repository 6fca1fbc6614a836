#!/usr/bin/env bash
# Benchmark of `envgate serve`, on this machine only: a project of CHECKS
# file probes (default 100) audited every second, while wrk (an established
# HTTP load generator) asks /metrics and then /api/v1/envs/prod/status as
# fast as it can; then the server's resident memory, idle.
# usage: bench/serve.sh [CHECKS] [SECONDS]   (defaults 100, 20)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKS=${1:-100}
SECS=${2:-20}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# ENVGATE_BIN=path measures a binary built earlier instead of building one.
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --profile profiling --quiet --bin envgate
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/profiling/envgate
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/environments" "$WORK/checks" "$WORK/markers"
printf '[project]\nname = "bench"\nenvironments = ["prod"]\n' >"$WORK/envgate.toml"
printf '[markers]\ndir = "%s/markers"\n' "$WORK" >"$WORK/environments/prod.toml"
for i in $(seq "$CHECKS"); do
  touch "$WORK/markers/m$i"
  printf '[[probe]]\nname = "m%d"\nkind = "file"\ntarget = "${markers.dir}/m%d"\n\n' "$i" "$i" >>"$WORK/checks/probes.toml"
done

"$BIN" -C "$WORK" serve --env prod --listen "127.0.0.1:$PORT" --interval 1s 2>"$WORK/serve.log" &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
sleep 3
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$PID/status"; }
echo "== $CHECKS checks audited every second; RSS before load: $(rss)"
for conns in 32 4; do for path in /metrics /api/v1/envs/prod/status; do
  echo "== wrk -t2 -c$conns -d${SECS}s --latency $path"
  wrk -t2 -c"$conns" -d"${SECS}s" --latency "http://127.0.0.1:$PORT$path" | grep -E "Requests/sec|Latency  |  50%|  99%|Non-2xx|Socket errors"
done; done
runs=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1=="envgate_serve_runs_total" {print $2}')
skipped=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1=="envgate_serve_runs_skipped_total" {print $2}')
echo "== audit runs meanwhile: $runs completed, $skipped skipped"
# Idle: nothing asks; the audit goes on every second.
sleep 10
echo "== idle RSS with $CHECKS checks: $(rss)"
