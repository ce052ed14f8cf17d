#!/usr/bin/env bash
# Set up the virtual environment (scripts/setup_venv.sh) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh
exec "${NNUNET_VENV:-.venv}/bin/python" -m pytest -q "$@"
