#!/usr/bin/env bash
# tansu, a Kafka-protocol broker written in Rust, built once (with in-memory
# storage, `--storage-engine memory://tansu/`) into
# /opt/envgate-tools/bin/tansu and reused afterwards. No test uses it, so
# scripts/test.sh does not run it: its build (about 400 crates) takes well
# over half an hour on two busy cores. It runs at the lowest priority in its
# own target directory, deleted afterwards. Idempotent; runs as root.
set -euo pipefail

root=/opt/envgate-tools
version=0.6.0

if [ -x "$root/bin/tansu" ]; then
    echo "tansu.sh: tansu present at $root/bin/tansu"
    exit 0
fi

target=$(mktemp -d /tmp/envgate-tansu-build.XXXXXX)
trap 'rm -rf "$target"' EXIT
mkdir -p "$root"
CARGO_TARGET_DIR="$target" nice -n 19 cargo install --locked tansu \
    --version "$version" --features dynostore --root "$root"
"$root/bin/tansu" --version
