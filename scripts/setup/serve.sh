#!/usr/bin/env bash
# What tests/serve.rs needs beyond the services: Prometheus (the tests
# start their own instance on a free loopback port with a 1 s scrape
# interval, its own configuration and data directory, and stop it);
# headless Chromium (the status page, badge and HTML status rendered and
# screenshotted); kubernetes-validate (it ships the Kubernetes API schemas,
# so it works offline) for examples/kubernetes/deployment.yaml.
# Idempotent; runs as root on a fresh Debian.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

if ! command -v prometheus >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update
    # The package's own service is not wanted: tests start their own.
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

if ! command -v chromium >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium fonts-dejavu-core
fi

if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore kubernetes-validate
fi
