#!/usr/bin/env bash
# Set up .venv with the dev extras and run the test suite (the same command CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/pytest "$@"
