#!/usr/bin/env bash
# Set up .venv and run streamtune's main job on the shipped data: check the Nexmark configs, plan the
# fusion of q5, tune q3's parallelism with the StreamTune tuner and the models pretrained on the shipped
# histories (sample_histories/models) on the simulated executor, reports in out/, and place q5 in the
# clusters learnt from those histories.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
st=.venv/bin/streamtune
$st validate 'configs/nexmark/*.yaml'
$st fuse configs/nexmark/q5.yaml --markdown out/q5-fusion.md
$st tune configs/nexmark/q3.yaml --executor sim --tuner streamtune --models sample_histories/models --seed 0 --out out/q3-tune
$st cluster assign configs/nexmark/q5.yaml --clusters sample_histories/clusters.json
echo
echo "reports: out/q5-fusion.md, out/q3-tune/report.md, out/q3-tune/report.html"
