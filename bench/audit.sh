#!/usr/bin/env bash
# Benchmark of the audit's recording and history, on this machine only:
#   1. what recording adds to a run: `envgate audit` against `envgate check`
#      on the same project of 100 and 1,000 checks (file probes, so the
#      probes cost next to nothing and the difference is the store);
#   2. 100,000 recorded runs of 50 checks (generated through the same
#      recording code, retention on): the SQLite file's size, and how fast
#      `envgate history --env prod` answers.
# usage: bench/audit.sh [RUNS]   (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=${1:-100000}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
# ENVGATE_BIN=path measures a binary built earlier (the history generator is still built).
cargo build --release --quiet --example audit_history
GEN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/audit_history
if [ -n "${ENVGATE_BIN:-}" ]; then
  BIN=$ENVGATE_BIN
else
  cargo build --release --quiet --bin envgate
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/envgate
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

project() { # DIR CHECKS: a project whose CHECKS file probes all pass
  mkdir -p "$1/environments" "$1/checks" "$1/markers"
  printf '[project]\nname = "bench"\nenvironments = ["prod"]\n' >"$1/envgate.toml"
  printf '[markers]\ndir = "%s/markers"\n' "$1" >"$1/environments/prod.toml"
  : >"$1/checks/probes.toml"
  for i in $(seq "$2"); do
    touch "$1/markers/m$i"
    printf '[[probe]]\nname = "m%d"\nkind = "file"\ntarget = "${markers.dir}/m%d"\n\n' "$i" "$i" >>"$1/checks/probes.toml"
  done
}

for n in 100 1000; do
  project "$WORK/p$n" "$n"
  # A store with some history already, as in production.
  for _ in 1 2 3; do (cd "$WORK/p$n" && "$BIN" audit --env prod -q); done
  echo "== $n checks: check vs audit"
  (cd "$WORK/p$n" && hyperfine -N --warmup 3 --runs 30 \
    "$BIN check --env prod --format json" "$BIN audit --env prod -q" 2>/dev/null | grep -E "Time|±|faster" || true)
  # The same two, alternately, so a drift in the machine's load falls on both.
  (cd "$WORK/p$n" && python3 "$ROOT/bench/interleave.py" 200 \
    "$BIN check --env prod --format json" "$BIN audit --env prod -q")
done

echo "== $RUNS runs of 50 checks"
"$GEN" "$WORK/h" "$RUNS" 50
DB="$WORK/h/.envgate/history.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('pragma wal_checkpoint(TRUNCATE)'); print('results kept:', c.execute('select count(*) from results').fetchone()[0], ' runs kept:', c.execute('select count(*) from runs').fetchone()[0])" "$DB"
echo "SQLite file: $(du -m "$DB" | cut -f1) MiB ($(stat -c %s "$DB") bytes)"
(cd "$WORK/h" && hyperfine -N --warmup 3 --runs 20 "$BIN history --env prod" "$BIN history --env prod --format json" 2>/dev/null | grep -E "Time|Range" || true)
