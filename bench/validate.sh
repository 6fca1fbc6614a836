#!/usr/bin/env bash
# Benchmark: `envgate validate` (every environment, offline) on a generated
# project of 100 environments x 2,000 keys, and on the bundled example.
# usage: bench/validate.sh [ENVS] [KEYS] [RULES]
set -euo pipefail
cd "$(dirname "$0")/.."
ENVS=${1:-100} KEYS=${2:-2000} RULES=${3:-0}

# ENVGATE_BIN=path measures a binary built earlier instead of building one.
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/envgate
fi
OUT=$PWD/bench/out/validate-$ENVS-$KEYS-$RULES
rm -rf "$OUT"
python3 bench/gen_project.py "$OUT" "$ENVS" "$KEYS" "$RULES"

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }

echo "generated: $ENVS environments x $KEYS keys, $RULES rules ($(du -sh "$OUT" | cut -f1))"
"$BIN" -C "$OUT" validate >/dev/null  # must pass before we time it
hyperfine --warmup 2 --runs 10 -N "$BIN -C $OUT validate" \
  "$BIN -C $PWD validate" \
  --export-markdown bench/out/validate.md
/usr/bin/time -f "peak RSS %M KiB" "$BIN" -C "$OUT" validate >/dev/null
