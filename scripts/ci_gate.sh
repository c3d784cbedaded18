#!/usr/bin/env bash
# streamtune's own CI performance gate: the quick benchmark and fusion of every Nexmark config, each
# gated against the baseline committed in configs/gates/ (deterministic: fixed seeds, analytic models).
#
#   bash scripts/ci_gate.sh                     gate; exit 0 pass, 1 a regression, 2 bad input
#   bash scripts/ci_gate.sh --update-baseline   deliberately accept the current numbers (review the diff!)
#
# GATE_OUT=dir keeps the reports, JUnit XML and Markdown summaries there (default: a fresh temp dir);
# on GitHub Actions every summary is appended to $GITHUB_STEP_SUMMARY.
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMTUNE=${STREAMTUNE:-.venv/bin/streamtune}
OUT=${GATE_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/streamtune-gate.XXXXXX")}
mkdir -p "$OUT"
GATES=configs/gates

update=()
case "${1:-}" in
  "") ;;
  --update-baseline) update=(--update-baseline) ;;
  *) echo "usage: bash scripts/ci_gate.sh [--update-baseline]" >&2; exit 2 ;;
esac

worst=0
gate() {  # gate NAME REPORT BASELINE RULES: run one gate, remember the worst exit code, keep going
  local name=$1 report=$2 baseline=$3 rules=$4 code=0
  echo "== gate: $name"
  "$STREAMTUNE" gate "$report" --baseline "$baseline" --rules "$rules" \
    --junit "$OUT/gate-$name.xml" --summary "$OUT/gate-$name.md" "${update[@]}" || code=$?
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -f "$OUT/gate-$name.md" ]]; then
    cat "$OUT/gate-$name.md" >> "$GITHUB_STEP_SUMMARY"
  fi
  # Bad input (2) outranks a regression (1): a gate that could not run must not read as a mere failure.
  if (( code > worst )); then worst=$code; fi
}

SECONDS=0
echo "== bench: configs/bench/quick.yaml"
"$STREAMTUNE" bench --suite configs/bench/quick.yaml --out "$OUT/bench.json" > "$OUT/bench.log"
gate bench-quick "$OUT/bench.json" "$GATES/baseline-bench-quick.json" "$GATES/project-bench.yaml"

# Every Nexmark config: a new query without a committed baseline fails the gate (exit 2) until one is added.
for spec in configs/nexmark/*.yaml; do
  query=$(basename "$spec" .yaml)
  "$STREAMTUNE" fuse "$spec" --json "$OUT/fuse-$query.json" > "$OUT/fuse-$query.log"
  gate "fuse-$query" "$OUT/fuse-$query.json" "$GATES/baseline-fuse-$query.json" "$GATES/project-fuse.yaml"
done

if (( ${#update[@]} )); then
  echo "baselines updated in $GATES/: review 'git diff $GATES' and commit them deliberately"
fi
echo "ci gate: exit $worst after ${SECONDS}s; reports, JUnit XML and summaries in $OUT"
exit "$worst"
