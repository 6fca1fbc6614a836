#!/usr/bin/env bash
# What hostile input costs: an `http` source whose body never ends, and a
# 25 MB line beside an error. Prints wall time and peak RSS of each run.
# usage: bench/hostile_files.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# ENVGATE_BIN=path measures a binary built earlier instead of building one.
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/envgate
fi
OUT=$PWD/bench/out/hostile
rm -rf "$OUT" && mkdir -p "$OUT/environments"
printf '[project]\nname = "svc"\n' > "$OUT/envgate.toml"
printf '[http]\nport = 1\n' > "$OUT/environments/prod.toml"

# A server that sends `[` and then `A` forever, until the client hangs up.
PORT=$(python3 - <<'PY'
import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
PY
)
python3 - "$PORT" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
chunk = b"A" * 65536
while True:
    c, _ = s.accept()
    if not c.recv(65536):
        continue  # the readiness check below
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[\"")
        while True:
            c.sendall(chunk)
    except OSError:
        c.close()
PY
SERVER=$!
# Wait (bounded) for the server to listen.
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
cat >> "$OUT/envgate.toml" <<TOML

[[source]]
name = "endless"
kind = "http"
url = "http://127.0.0.1:$PORT/config"
timeout = "60s"
TOML
echo "endless http source:"
COLUMNS=1000 /usr/bin/time -f "  %e s, peak RSS %M KiB" "$BIN" -C "$OUT" check --env prod 2>&1 >/dev/null | grep -E "cannot fetch|peak RSS" || true
kill "$SERVER" 2>/dev/null || true

printf '[project]\nname = "svc"\n' > "$OUT/envgate.toml"
python3 -c "print('# ' + 'A' * 25_000_000); print('[http]'); print('port = [1')" > "$OUT/environments/prod.toml"
echo "25 MB line beside a syntax error:"
/usr/bin/time -f "  %e s, peak RSS %M KiB" "$BIN" -C "$OUT" validate 2>&1 >/dev/null | awk '{ n += length($0) } /peak RSS/ { print } END { print "  " n " characters of output" }' || true
