#!/usr/bin/env bash
# Create (or reuse) a virtual environment with torch and this package installed (editable, with
# test extras). Keeps a torch that is already installed (e.g. a CUDA build); otherwise installs
# TORCH_SPEC (default torch==2.13.0, the CPU build these machines have on disk).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${NNUNET_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
if ! "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
    "$PY" -m pip install -q ${TORCH_SPEC:-torch==2.13.0}  # unquoted: may carry pip options
fi
# dynamic-network-architectures pulls timm -> torchvision; pin torch so pip cannot swap it out
CONSTRAINTS="$(mktemp)"
"$PY" -c "from importlib.metadata import version; print('torch==' + version('torch').split('+')[0])" > "$CONSTRAINTS"
"$PY" -m pip install -q -c "$CONSTRAINTS" -e ".[test]"
rm -f "$CONSTRAINTS"
