#!/bin/sh
# Runs the Python integration suite with Debian's python3-azure-cosmos 3.1.1.
# /usr/bin/python3 on purpose: another python3 may come first on PATH.
# ATREST_BIN names the server binary. The argument picks the test files
# (default test_sdk.py; test_attachments.py is ctest integration_attachments).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/py"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m unittest discover -s . -p "${1:-test_sdk.py}" -v
