#!/usr/bin/env bash
# Benchmark of the probe runner, against servers on 127.0.0.1 only:
#   1. 1,000 http probes of a server that answers after 200 ms
#      (`envgate probe --targets-file`): wall time and peak RSS;
#   2. one target that accepts and never answers, --timeout 2s: wall time;
#   3. an HTTP 500: wall time (no waiting for a timeout);
#   4. the 1,000 URLs of (1) with Python asyncio + aiohttp, for comparison.
# Start-up time is bench/startup.sh.
# usage: bench/probes.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}

# ENVGATE_BIN=path measures a binary built earlier instead of building one.
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/envgate
fi
OUT=$PWD/bench/out
mkdir -p "$OUT"
if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

python3 -c 'import uvloop, aiohttp' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore uvloop aiohttp

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start_server() { # PORT MODE
  python3 bench/probe_server.py "$1" "$2" > "$OUT/server-$2.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q ready "$OUT/server-$2.log" 2>/dev/null && return; sleep 0.05; done
  echo "server $2 did not start" >&2; exit 1
}

SLOW=$(free_port); start_server "$SLOW" slow
SILENT=$(free_port); start_server "$SILENT" silent
seq "$N" | sed "s|.*|http://127.0.0.1:$SLOW/health?i=&|" > "$OUT/targets.txt"

echo "== $N http probes, server answers after 200 ms"
"$BIN" probe --targets-file "$OUT/targets.txt" --timeout 5s > "$OUT/probe.txt"  # warm-up
for i in 1 2 3; do
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$BIN" probe --targets-file "$OUT/targets.txt" --timeout 5s > "$OUT/probe.txt"
  tail -1 "$OUT/probe.txt"
done

echo "== the same $N URLs with Python asyncio + aiohttp (uvloop), in the same run"
python3 bench/aiohttp_probes.py "$OUT/targets.txt" >/dev/null  # warm-up
for i in 1 2 3; do
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" python3 bench/aiohttp_probes.py "$OUT/targets.txt"
done

echo "== one target that accepts and never answers, --timeout 2s"
/usr/bin/time -f "wall %e s, peak RSS %M KiB" "$BIN" probe "http://127.0.0.1:$SILENT/" --timeout 2s > "$OUT/silent.txt" || true
head -1 "$OUT/silent.txt"

echo "== HTTP 500, --timeout 5s"
python3 - "$OUT" <<'PY' &
import http.server, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + "/port500", "w").write(str(s.server_address[1]))
threading.Timer(60, s.shutdown).start()
s.serve_forever()
PY
PIDS+=($!)
for _ in $(seq 100); do [ -s "$OUT/port500" ] && break; sleep 0.05; done
/usr/bin/time -f "wall %e s" "$BIN" probe "http://127.0.0.1:$(cat "$OUT/port500")/" --timeout 5s > "$OUT/500.txt" || true
head -1 "$OUT/500.txt"
rm -f "$OUT/port500"

