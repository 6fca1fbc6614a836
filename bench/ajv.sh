#!/usr/bin/env bash
# Benchmark: validate 1,000 JSON configurations (54-200 keys each) against one
# JSON Schema, envgate (`check --all-envs --offline --format json`, one
# environment per document) beside ajv-cli on the same files, in one run.
# Both must find the same invalid documents before anything is timed.
# usage: bench/ajv.sh [N]
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
OUT=$PWD/bench/out/ajv-$N
rm -rf "$OUT"
python3 bench/gen_configs.py "$OUT" "$N"

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
if [ ! -x bench/out/node/node_modules/.bin/ajv ]; then
  npm install --silent --no-audit --no-fund --prefix bench/out/node ajv-cli@5 ajv-formats@3 >/dev/null
fi
AJV=$PWD/bench/out/node/node_modules/.bin/ajv

# Same verdicts: the set of invalid documents must agree.
"$BIN" -C "$OUT" check --all-envs --offline --format json > "$OUT/envgate.json" || true
python3 - "$OUT/envgate.json" > "$OUT/envgate-invalid.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for e in r["environments"]:
    if e["status"] == "fail":
        print(e["name"])
PY
( cd "$OUT" && "$AJV" validate --spec=draft2020 --strict=false --all-errors -s schema.json -d "configs/*.json" 2>&1 || true ) \
  | sed -n 's|^configs/\(env[0-9]*\)\.json invalid.*|\1|p' > "$OUT/ajv-invalid.txt"
sort -o "$OUT/envgate-invalid.txt" "$OUT/envgate-invalid.txt"
sort -o "$OUT/ajv-invalid.txt" "$OUT/ajv-invalid.txt"
if ! diff -q "$OUT/envgate-invalid.txt" "$OUT/ajv-invalid.txt" >/dev/null; then
  echo "verdicts differ:"; diff "$OUT/envgate-invalid.txt" "$OUT/ajv-invalid.txt" | head; exit 1
fi
echo "same verdicts: $(wc -l < "$OUT/ajv-invalid.txt") of $N documents invalid"

hyperfine --warmup 2 --runs 10 -i -N \
  -n envgate "$BIN -C $OUT check --all-envs --offline --format json" \
  -n ajv-cli "$AJV validate --spec=draft2020 --strict=false --all-errors -s $OUT/schema.json -d $OUT/configs/*.json" \
  --export-markdown bench/out/ajv.md
