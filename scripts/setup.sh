#!/usr/bin/env bash
# Create .venv (if missing) and install streamtune with its dependencies, torch pinned by constraints.txt.
# Usage: bash scripts/setup.sh [--dev]    (--dev adds pytest and hypothesis)
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
extra=""
if [ "${1:-}" = "--dev" ]; then extra="[dev]"; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".${extra}" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import streamtune_cli" >/dev/null
