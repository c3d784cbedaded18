#!/usr/bin/env bash
# Set up .venv and run streamtune's main job on the shipped Nexmark configs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/streamtune validate 'configs/nexmark/*.yaml'
.venv/bin/streamtune show configs/nexmark/q5.yaml
.venv/bin/streamtune show configs/nexmark/q5.yaml --format mermaid
