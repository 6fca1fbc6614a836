#!/usr/bin/env bash
# What bench/load.sh needs (it runs this first; the test suite needs none of it): nginx (the server that answers at once), and the
# load generators envgate is compared with, wrk (Debian) and Locust (PyPI,
# headless), plus uvloop for the 50 ms server. The timed tests need none of
# these: they use their own local servers and the shared PostgreSQL, MariaDB
# and Redis. Idempotent; runs as root on a fresh Debian.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
if ! command -v wrk >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
    apt-get -o DPkg::Lock::Timeout=600 update
    # nginx's own service is not wanted: the bench starts its own.
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends wrk nginx-light time
    systemctl disable --now nginx 2>/dev/null || service nginx stop 2>/dev/null || true
fi
if ! python3 -c 'import uvloop' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore uvloop
fi
if ! python3 -c 'import locust' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'locust==2.47.0'
fi
