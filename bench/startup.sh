#!/usr/bin/env bash
# Benchmark of start-up: `envgate --version` beside a Rust program that only
# prints a line (built here with the same rustc, -O), one after the other in
# one hyperfine run, so the difference is envgate's own cost: loading
# its libraries, the loader writing its relocated constants, the allocator's
# first arena and the command-line parser. Page faults and peak RSS from
# /usr/bin/time.
# usage: bench/startup.sh [RUNS]   (default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-500}

# ENVGATE_BIN=path measures a binary built earlier instead of building one.
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/envgate
fi
OUT=$PWD/bench/out
mkdir -p "$OUT"
if [ ! -x /usr/bin/time ] || ! command -v hyperfine >/dev/null; then
  apt-get update -qq && apt-get install -y -qq time hyperfine >/dev/null
fi

printf 'fn main() {\n    println!("hello 0.1.0");\n}\n' >"$OUT/hello.rs"
rustc -O --edition 2021 -o "$OUT/hello" "$OUT/hello.rs"

echo "== $(basename "$BIN") --version ($(stat -c %s "$BIN") bytes) and a Rust hello world"
hyperfine -N --warmup 20 --runs "$RUNS" "$BIN --version" "$OUT/hello" 2>/dev/null |
  grep -E "Benchmark|Time|Range|faster|±"
echo
for cmd in "$BIN --version" "$OUT/hello"; do
  /usr/bin/time -f "$(basename "${cmd%% *}"): %R minor page faults, peak RSS %M KiB" $cmd >/dev/null
done
