#!/usr/bin/env bash
# What tests/probes.rs needs: a real Nagios plugin (check_dummy, check_disk)
# from Debian's monitoring-plugins-basic. Idempotent; runs as root on a
# fresh Debian machine.
set -euo pipefail

if [ ! -x /usr/lib/nagios/plugins/check_dummy ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends monitoring-plugins-basic
fi
