#!/usr/bin/env bash
# What tests/audit.rs needs beyond the services: Prometheus Alertmanager (the
# tests start their own instance on a free loopback port, so nothing is
# started here), kubernetes-validate for the CronJob example, and
# systemd-analyze for the service and timer. Idempotent; runs as root on a
# fresh Debian.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
updated=""

install() { # package, command it provides
    if ! command -v "$2" >/dev/null 2>&1; then
        if [ -z "$updated" ]; then
            apt-get -o DPkg::Lock::Timeout=600 update
            updated=1
        fi
        # The package's own service is not wanted: tests start their own.
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$1"
    fi
}

install prometheus-alertmanager prometheus-alertmanager
install systemd systemd-analyze

if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore kubernetes-validate
fi
