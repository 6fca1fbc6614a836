#!/usr/bin/env bash
# What tests/install.rs needs: bash (completion scripts) and man-db (`man -l`).
set -euo pipefail
if command -v man >/dev/null && command -v bash >/dev/null && command -v groff >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends bash man-db groff-base >/dev/null
