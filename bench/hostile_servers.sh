#!/usr/bin/env bash
# What a hostile server can make one probe hold, against servers on
# 127.0.0.1 only (release build):
#   1. a "PostgreSQL" and an "S3" port that answer endless bytes, and a
#      "Redis" port announcing a 1 GiB bulk reply: peak RSS of
#      `envgate probe URL --timeout 5s` (the bound, not the timeout, ends it);
#   2. 2,000 tcp probes under `ulimit -n 256`: wall time and how many pass.
# usage: bench/hostile_servers.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# ENVGATE_BIN=path measures a binary built earlier instead of building one.
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/envgate
fi
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
TMP=$(mktemp -d)
serve() { # NAME HEAD (python bytes literal) FILL: the port goes to $TMP/NAME
  python3 -c '
import socket, sys, threading
name, head, fill = sys.argv[1], eval(sys.argv[2]), sys.argv[3].encode() * 65536
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
open(name, "w").write(str(s.getsockname()[1]))
def one(c):
    try:
        c.settimeout(0.1)
        try: c.recv(4096)
        except OSError: pass
        c.settimeout(None); c.sendall(head)
        while True: c.sendall(fill)
    except OSError: pass
while True:
    c, _ = s.accept(); threading.Thread(target=one, args=(c,), daemon=True).start()
' "$TMP/$1" "$2" "$3" &
  PIDS+=($!)
  until [ -s "$TMP/$1" ]; do sleep 0.05; done
}
peak() { # URL
  /usr/bin/time -f "%M" "$BIN" probe "$1" --timeout 5s 2>&1 >/dev/null | tail -1
}

serve pg 'b""' A; serve s3 'b"HTTP/1.1 403 Forbidden\r\nContent-Length: 999999999999\r\n\r\n"' A
serve redis 'b"$1073741824\r\n"' A
PG=$(cat "$TMP/pg"); S3=$(cat "$TMP/s3"); RD=$(cat "$TMP/redis")
echo "== peak RSS (KiB) of one probe against an endless answer"
echo "postgres  $(peak "postgres://u@127.0.0.1:$PG/d")"
echo "s3        $(peak "http://127.0.0.1:$S3/bucket")"
echo "redis     $(peak "redis://127.0.0.1:$RD/0")"
echo "baseline  $(peak "tcp://127.0.0.1:1")  (a closed port)"

echo "== 2,000 tcp probes under ulimit -n 256"
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(512)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True: s.accept()[0].close()' "$TMP/accept" &
PIDS+=($!)
until [ -s "$TMP/accept" ]; do sleep 0.05; done
PORT=$(cat "$TMP/accept")
TARGETS=$(mktemp); for _ in $(seq 2000); do echo "tcp://127.0.0.1:$PORT"; done > "$TARGETS"
( ulimit -n 256; /usr/bin/time -f "%e s wall, %M KiB peak" "$BIN" probe --targets-file "$TARGETS" --format json --timeout 10s ) \
  2>&1 >"$TARGETS.json" | tail -1
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["environments"][0]["results"]; print(sum(x["status"]=="pass" for x in r), "of", len(r), "pass")' "$TARGETS.json"
rm -rf "$TARGETS" "$TARGETS.json" "$TMP"
