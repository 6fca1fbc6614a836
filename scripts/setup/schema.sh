#!/usr/bin/env bash
# What the schema and YAML reference tests compare envgate with
# (tests/schema_reference.rs, tests/yaml_reference.rs): check-jsonschema from
# PyPI, which brings jsonschema, ruamel.yaml (a YAML 1.2 reader) and the
# schemas it vendors, and PyYAML (a YAML 1.1 reader). Pinned, because the
# tests' documents are written against these versions' vendored schemas.
# Idempotent: quick when already installed.
set -euo pipefail

if ! python3 - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
want = {"check-jsonschema": "0.39.0", "ruamel.yaml": "0.19.1", "PyYAML": "6.0.3"}
sys.exit(0 if all(version(k) == v for k, v in want.items()) else 1)
PY
then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "check-jsonschema==0.39.0" "ruamel.yaml==0.19.1" "PyYAML==6.0.3"
fi
