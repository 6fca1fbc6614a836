#!/usr/bin/env bash
# pre-commit from PyPI, for tests/pre_commit.rs (`pre-commit try-repo`).
set -euo pipefail
venv=/opt/envgate-tools/precommit-venv
if [ -x "$venv/bin/pre-commit" ]; then
  exit 0
fi
command -v git >/dev/null || { apt-get update -qq && apt-get install -y -qq git >/dev/null; }
python3 -m venv "$venv"
"$venv/bin/pip" install -q 'pre-commit==4.7.0'
