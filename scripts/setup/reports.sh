#!/usr/bin/env bash
# Tools the report-format consumer tests (tests/report_formats.rs) run:
# Chromium for the HTML report, Python's junitparser / prometheus-client /
# jsonschema for JUnit, Prometheus and SARIF, and the SARIF multitool from npm.
# Idempotent: safe to run on every CI run; runs as root on a fresh Debian.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium fonts-dejavu-core
fi

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore junitparser prometheus-client jsonschema

if [ ! -e .tools/node_modules/@microsoft/sarif-multitool/package.json ]; then
    npm install --silent --no-audit --no-fund --prefix .tools @microsoft/sarif-multitool
fi
