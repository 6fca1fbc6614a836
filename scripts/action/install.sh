#!/usr/bin/env bash
# The action's install step: envgate at the action's own version, from the
# action's checkout (the README's Install section), into ENVGATE_ROOT — kept
# by actions/cache, so later runs only check the cached binary.
set -euo pipefail
: "${ENVGATE_ROOT:?}" "${GITHUB_ACTION_PATH:?}" "${GITHUB_PATH:?}"
want="envgate $(grep -m1 '^version = ' "$GITHUB_ACTION_PATH/Cargo.toml" | cut -d'"' -f2)"
have="$("$ENVGATE_ROOT/bin/envgate" --version 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
  echo "envgate: using the cached $have"
else
  echo "envgate: installing $want"
  cargo install --locked --path "$GITHUB_ACTION_PATH" --root "$ENVGATE_ROOT"
fi
echo "$ENVGATE_ROOT/bin" >> "$GITHUB_PATH"
