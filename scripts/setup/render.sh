#!/usr/bin/env bash
# What the render round-trip tests (tests/cli/roundtrip.rs) read envgate's
# output with: PyYAML, python-dotenv and Python's own tomllib and json.
# Idempotent: quick when they are already there; runs as root on a fresh Debian.
set -euo pipefail

if ! python3 -c 'import tomllib' 2>/dev/null; then
    echo "render.sh: python3 is older than 3.11 (no tomllib)" >&2
    exit 1
fi
python3 -c 'import yaml, dotenv' 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore PyYAML python-dotenv
