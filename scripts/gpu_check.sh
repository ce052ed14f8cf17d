#!/usr/bin/env bash
# Check the CUDA code paths in one command and print one summary table (see scripts/gpu_check.py).
#   bash scripts/gpu_check.sh [--reference-bin /path/to/nnunet-v2-venv/bin] [--keep]
# Uses $PYTHON, else the repository's .venv, else python3. Runs the CPU-safe parts without CUDA.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python="python3"; fi
fi
exec "$python" "$repo/scripts/gpu_check.py" "$@"
