#!/usr/bin/env bash
# What bench/load.sh compares envgate's load generator with: wrk (Debian) and
# Locust (PyPI, headless). The timed tests need neither: they use their own
# local servers and the shared PostgreSQL, MariaDB and Redis. Idempotent;
# runs as root on a fresh Debian.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
if ! command -v wrk >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends wrk
fi
if ! python3 -c 'import locust' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'locust==2.47.0'
fi
