#!/usr/bin/env bash
# Follows the README's "Install" section on a clean clone of the committed HEAD:
# `cargo install --locked --path .` into a temporary root, then runs the
# installed binary. Reuses this checkout's target directory (dev profile,
# offline) so it costs one compile of envgate itself, not of its dependencies.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone --quiet --no-hardlinks "$repo" "$work/envgate"
cd "$work/envgate"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}" \
  cargo install --locked --offline --debug --quiet --path . --root "$work/root"

version="$("$work/root/bin/envgate" --version)"
expected="envgate $(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)"
if [ "$version" != "$expected" ]; then
  echo "install-check: installed binary says '$version', expected '$expected'" >&2
  exit 1
fi
"$work/root/bin/envgate" -C "$work/envgate" validate >/dev/null || {
  echo "install-check: the installed envgate does not validate the bundled example" >&2
  exit 1
}
echo "install-check: $version installed from a clean clone and validated the example"
