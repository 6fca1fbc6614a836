#!/usr/bin/env bash
# envgate's load generator (`envgate probe --load NxC`) next to wrk and Locust
# (headless), on the same targets in the same run, all on 127.0.0.1:
#   1. nginx answering "200 ok" at once (one worker process, so the clients
#      keep the other core): requests per second, and requests per CPU-second
#      of the client (user + system time, /usr/bin/time), 64 connections;
#   2. a server that answers every request in 50 ms (bench/load_server.py),
#      20 connections: p50, p90 and p99 of each client, and envgate's
#      difference from each peer.
# Figures go to stdout and bench/out/load/summary.txt. Not a test: run by hand.
# usage: bench/load.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}

bash bench/load_tools.sh >/dev/null
cargo build --profile profiling --quiet
BIN=${CARGO_TARGET_DIR:-$PWD/target}/profiling/envgate
OUT=$PWD/bench/out/load
rm -rf "$OUT"; mkdir -p "$OUT"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 did not open" >&2; exit 1; }

FAST=$(free_port)
cat > "$OUT/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $OUT; proxy_temp_path $OUT; fastcgi_temp_path $OUT; uwsgi_temp_path $OUT; scgi_temp_path $OUT;
  server { listen 127.0.0.1:$FAST; location / { return 200 "ok"; } }
}
CONF
nginx -c "$OUT/nginx.conf" -p "$OUT" &
PIDS+=($!)
SLOW=$(free_port)
python3 bench/load_server.py "$SLOW" 50 > "$OUT/slow.log" 2>&1 &
PIDS+=($!)
wait_port "$FAST"; wait_port "$SLOW"

timed() { # NAME CMD... : the command's output in $OUT/NAME.out, "wall user sys" in $OUT/NAME.time
  local name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
}

fast_url=http://127.0.0.1:$FAST/
slow_url=http://127.0.0.1:$SLOW/
echo "== 1. nginx answering at once, 64 connections, ~${SECS}s each"
"$BIN" probe --load 20000x64 "$fast_url" > /dev/null   # warm-up
timed envgate-fast "$BIN" probe --format json --load "$((SECS * 25000))x64" "$fast_url"
timed wrk-fast wrk -t1 -c64 -d"${SECS}s" --latency "$fast_url"
timed locust-fast locust -f bench/locustfile.py --headless -u 64 -r 64 -t "${SECS}s" --host "http://127.0.0.1:$FAST" \
  --only-summary --loglevel WARNING

echo "== 2. a server answering in 50 ms, 20 connections"
timed envgate-slow "$BIN" probe --format json --load "$((SECS * 400))x20" "$slow_url"
timed wrk-slow wrk -t1 -c20 -d"${SECS}s" --latency "$slow_url"
timed locust-slow locust -f bench/locustfile.py --headless -u 20 -r 20 -t "${SECS}s" --host "http://127.0.0.1:$SLOW" \
  --only-summary --loglevel WARNING

python3 - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, re, sys
out = sys.argv[1]

def cpu(name):
    wall, user, sys_ = (float(x) for x in open(f"{out}/{name}.time").read().split()[-3:])
    return user + sys_

def envgate(name):
    r = json.load(open(f"{out}/{name}.out"))["environments"][0]["results"][0]
    l = r["load"]
    return dict(count=l["count"] + 1, rps=l["throughput"], p50=l["p50_ms"], p90=l["p90_ms"], p99=l["p99_ms"], errors=l["errors"])

def ms(text):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

def wrk(name):
    t = open(f"{out}/{name}.out").read()
    lat = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", t, re.M))
    count = int(re.search(r"(\d+) requests in", t).group(1))
    return dict(count=count, rps=float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)),
                p50=ms(lat["50"]), p90=ms(lat["90"]), p99=ms(lat["99"]), errors=0)

def locust(name):
    # Locust's own end-of-run summary (its CSV stays empty with --only-summary).
    t = open(f"{out}/{name}.err").read()
    head, pct = t.rsplit("Response time percentiles", 1)
    req = [l for l in head.splitlines() if l.startswith("GET ")][-1]
    counts, rest = req.split("|", 1)
    count = int(counts.split()[-2])
    fails = int(counts.split()[-1].split("(")[0])
    rps = float(rest.split("|")[1].split()[0])
    p = [l for l in pct.splitlines() if l.startswith("GET ")][-1].split()[2:]
    return dict(count=count, rps=rps, p50=float(p[0]), p90=float(p[4]), p99=float(p[7]), errors=fails)

print("1. nginx answering at once, 64 connections")
print(f"{'client':10} {'requests':>9} {'req/s':>9} {'CPU s':>7} {'req per CPU-s':>14}")
for tool, f in (("envgate", envgate), ("wrk", wrk), ("locust", locust)):
    r, c = f(f"{tool}-fast"), cpu(f"{tool}-fast")
    print(f"{tool:10} {r['count']:>9} {r['rps']:>9.0f} {c:>7.2f} {r['count'] / c:>14.0f}")
print()
print("2. a server answering in 50 ms, 20 connections (ms)")
e = envgate("envgate-slow")
print(f"{'client':10} {'requests':>9} {'p50':>7} {'p90':>7} {'p99':>7}   envgate's difference (p50 / p90 / p99)")
for tool, f in (("envgate", envgate), ("wrk", wrk), ("locust", locust)):
    r = f(f"{tool}-slow")
    diff = "" if tool == "envgate" else " / ".join(f"{(e[k] - r[k]) / r[k] * 100:+.1f}%" for k in ("p50", "p90", "p99"))
    print(f"{tool:10} {r['count']:>9} {r['p50']:>7.2f} {r['p90']:>7.2f} {r['p99']:>7.2f}   {diff}")
PY
