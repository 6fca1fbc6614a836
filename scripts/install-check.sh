#!/usr/bin/env bash
# Follows the README's "Install" section on a clean clone of the committed HEAD:
# `cargo install --locked --path .` into a temporary root, then runs the
# installed binary; then the same built with ENVGATE_NO_PIE=1. Reuses this
# checkout's target directory (dev profile, offline), so it costs two compiles
# of envgate itself, not of its dependencies.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone --quiet --no-hardlinks "$repo" "$work/envgate"
cd "$work/envgate"
# install ROOT: `cargo install` of the clone into ROOT, with whatever build
# settings the caller's environment holds.
install() {
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}" \
    cargo install --locked --offline --debug --quiet --path . --root "$1"
}

# validates ROOT WHAT: the envgate installed in ROOT validates the bundled example.
validates() {
  "$1/bin/envgate" -C "$work/envgate" validate >/dev/null || {
    echo "install-check: $2 does not validate the bundled example" >&2
    exit 1
  }
}

install "$work/root"
version="$("$work/root/bin/envgate" --version)"
expected="envgate $(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)"
if [ "$version" != "$expected" ]; then
  echo "install-check: installed binary says '$version', expected '$expected'" >&2
  exit 1
fi
validates "$work/root" "the installed envgate"
echo "install-check: $version installed from a clean clone and validated the example"

# The README's position-dependent build: an executable the loader does not
# relocate, which still validates the example.
ENVGATE_NO_PIE=1 install "$work/no-pie"
kind="$(readelf --file-header "$work/no-pie/bin/envgate" | sed -n 's/^ *Type: *\([A-Z]*\).*/\1/p')"
if [ "$kind" != "EXEC" ]; then
  echo "install-check: ENVGATE_NO_PIE=1 built a '$kind' binary, expected EXEC" >&2
  exit 1
fi
validates "$work/no-pie" "the position-dependent envgate"
echo "install-check: ENVGATE_NO_PIE=1 built a position-dependent binary that validates the example"
