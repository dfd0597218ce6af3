#!/bin/sh
# Runs the Python integration suite with Debian's python3-azure-cosmos 3.1.1.
# /usr/bin/python3 on purpose: another python3 may come first on PATH.
# ATREST_BIN names the server binary.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/py"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m unittest discover -s . -p 'test_*.py' -v
