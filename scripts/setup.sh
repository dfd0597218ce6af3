#!/bin/sh
# Installs the Debian 12 packages atrest needs to build, test and benchmark.
# Idempotent: does nothing (and asks apt nothing) when all are present.
set -eu

PACKAGES="build-essential cmake pkg-config libssl-dev libsqlite3-dev \
libcmocka-dev libsqlcipher-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev libpcre2-dev libmurmurhash-dev \
ca-certificates python3 python3-azure-cosmos python3-azure libcurl4-openssl-dev"
# The integration tests (tests/integration/) run @azure/cosmos on Node: use
# the node already installed (any >= 18), else Debian's nodejs and npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES nodejs npm"
fi

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "atrest: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "atrest: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
