#!/usr/bin/env bash
# The Kafka tests' broker. Apache Kafka is not packaged for Debian; tansu
# is a Kafka-compatible broker published as a Rust crate. It is built once,
# with in-memory storage, into /opt/envgate-tools/bin (about 15 minutes on
# two cores) and reused; each test starts its own broker on a free port.
# Idempotent; runs as root.
set -euo pipefail

tools=/opt/envgate-tools
version=0.6.0
if ! "$tools/bin/tansu" --version 2>/dev/null | grep -q "$version"; then
    mkdir -p "$tools"
    cargo install --quiet --locked "tansu@$version" --features dynostore --root "$tools"
fi
"$tools/bin/tansu" --version
