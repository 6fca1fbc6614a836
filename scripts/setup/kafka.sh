#!/usr/bin/env bash
# What tests/kafka.rs needs: tansu, a Kafka-protocol broker written in Rust,
# built once (with in-memory storage) into /opt/envgate-tools/bin/tansu and
# reused afterwards. The build takes 15-30 minutes on two cores, so it runs
# at the lowest priority in its own target directory, deleted afterwards.
# Idempotent; runs as root on a fresh Debian.
set -euo pipefail

root=/opt/envgate-tools
version=0.6.0

if [ -x "$root/bin/tansu" ]; then
    echo "kafka.sh: tansu present at $root/bin/tansu"
    exit 0
fi

target=$(mktemp -d /tmp/envgate-tansu-build.XXXXXX)
trap 'rm -rf "$target"' EXIT
mkdir -p "$root"
CARGO_TARGET_DIR="$target" nice -n 19 cargo install --locked tansu \
    --version "$version" --features dynostore --root "$root"
"$root/bin/tansu" --version
