#!/usr/bin/env bash
# Benchmark of the service probes, against servers on 127.0.0.1
# only (scripts/setup/services.sh starts them; moto is started here):
#   1. one run of 49 probes, 7 of each kind (postgres, mysql, redis, amqp,
#      nats, mqtt, s3): wall time and peak RSS, three runs;
#   2. 1,000 probes (143 of each kind) under `ulimit -n 1024`, 50 at a time:
#      every probe passes and no "too many open files".
# usage: bench/services.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup/services.sh >/dev/null
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

MOTO=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$MOTO" >"$OUT/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$MOTO") 2>/dev/null && break; sleep 0.1; done
python3 -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$MOTO', aws_access_key_id='a', aws_secret_access_key='b', region_name='us-east-1').create_bucket(Bucket='bench')"

targets() { # COUNT: COUNT targets of each kind
  for i in $(seq "$1"); do
    echo "postgres://postgres@127.0.0.1:5432/postgres"
    echo "mysql://root@127.0.0.1:3306/mysql"
    echo "redis://127.0.0.1:6379/$((i % 16))"
    echo "amqp://guest:guest@127.0.0.1:5672/"
    echo "nats://127.0.0.1:4222"
    echo "mqtt://127.0.0.1:1883"
    echo "s3://bench?endpoint=http://127.0.0.1:$MOTO"
  done
}

targets 7 >"$OUT/services-49.txt"
targets 143 | head -n 1000 >"$OUT/services-1000.txt"

echo "== 49 service probes (7 of each kind)"
"$BIN" probe --targets-file "$OUT/services-49.txt" --timeout 5s >"$OUT/services-49.out" # warm-up
for _ in 1 2 3; do
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$BIN" probe --targets-file "$OUT/services-49.txt" --timeout 5s >"$OUT/services-49.out"
  tail -1 "$OUT/services-49.out"
done

echo "== 1,000 service probes under ulimit -n 1024, --concurrency 50"
(
  ulimit -n 1024
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$BIN" probe --targets-file "$OUT/services-1000.txt" --timeout 10s --concurrency 50 >"$OUT/services-1000.out" 2>"$OUT/services-1000.err" || true
)
tail -1 "$OUT/services-1000.out"
cat "$OUT/services-1000.err"
if grep -qi "too many open files" "$OUT/services-1000.out" "$OUT/services-1000.err"; then
  echo "FAIL: too many open files" >&2
  exit 1
fi
echo "no \"too many open files\""
