#!/bin/sh
# One command from a fresh Debian 12 machine to a running atrest:
# installs what is missing, builds, and runs on the embedded defaults.
set -eu
cd "$(dirname "$0")"
sh scripts/setup.sh
exec make run
