"""Largest supported job: time and peak memory to load and validate generated specs of many operators.

Each size runs in a fresh child process, so its peak resident memory (ru_maxrss) is the spec's alone over
the interpreter with streamtune imported. "parse" is YAML to plain data with positions; "validate" is the
pydantic models plus the whole-job rules (ids, edges, DAG, demand bound); SQL is left out (the generated
operators carry none).

    .venv/bin/python benchmarks/bench_spec_size.py [--sizes 10000,50000,100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A realistic shape: one source fanning out to BRANCHES chains of maps, filters and keyed aggregates,
# joined again at one sink; every operator carries the cost hints a real spec has.
BRANCHES = 10


def spec_text(operators: int) -> str:
    """A valid job spec with `operators` operators (source and sink included)."""
    middle = operators - 2
    lines = ["name: generated", "description: bench_spec_size", "workload:", "  rate_rps: 100000", "operators:"]
    lines.append("  - {id: src, kind: source, parallelism: 4, cost_us: 2.0}")
    kinds = ("map", "filter", "aggregate")
    edges = []
    per_branch = [middle // BRANCHES + (1 if b < middle % BRANCHES else 0) for b in range(BRANCHES)]
    n = 0
    for branch, length in enumerate(per_branch):
        previous = "src"
        for step in range(length):
            op_id = f"b{branch}_op{step}"
            kind = kinds[n % 3]
            selectivity = {"map": 1.0, "filter": 0.99, "aggregate": 1.0}[kind]
            lines.append(
                f"  - {{id: {op_id}, kind: {kind}, parallelism: 4, max_parallelism: 64, cost_us: {1 + n % 7}.5, "
                f"selectivity: {selectivity}}}"
            )
            partitioning = "{partitioning: hash, key: [k]}" if kind == "aggregate" else "{partitioning: forward}"
            edges.append(f"  - {{from: {previous}, to: {op_id}, {partitioning[1:-1]}}}")
            previous = op_id
            n += 1
        edges.append(f"  - {{from: {previous}, to: sink, partitioning: rebalance}}")
    lines.append("  - {id: sink, kind: sink, parallelism: 4}")
    lines.append("edges:")
    lines += edges
    return "\n".join(lines) + "\n"


_CHILD = r"""
import json, resource, sys, time
from streamtune_cli.errors import SpecError
from streamtune_cli.spec.loader import spec_from_data
from streamtune_cli.spec.yaml_positions import load_yaml_file
base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
row = {}
t0 = time.perf_counter()
try:
    doc = load_yaml_file(sys.argv[1])
    t1 = time.perf_counter()
    spec = spec_from_data(doc, check_sql_expressions=False)
    t2 = time.perf_counter()
    row = {"operators": len(spec.operators), "parse_s": t1 - t0, "validate_s": t2 - t1}
except SpecError as exc:
    row = {"error": str(exc), "refused_after_s": time.perf_counter() - t0}
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
row.update({"peak_mib": peak_kb / 1024, "over_baseline_mib": (peak_kb - base_kb) / 1024})
print(json.dumps(row))
"""


def measure(operators: int, folder: Path) -> dict:
    path = folder / f"spec_{operators}.yaml"
    path.write_text(spec_text(operators))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"operators": operators, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    row = json.loads(out.stdout)
    row.setdefault("operators", operators)
    row["file_mib"] = path.stat().st_size / 2**20
    row["lines"] = path.read_text().count("\n")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,100000", help="Operator counts, comma-separated.")
    parser.add_argument("--json", type=Path, help="Also write the rows as JSON here.")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'operators':>10} {'file MiB':>9} {'parse s':>8} {'validate s':>11} {'peak MiB':>9} {'+MiB':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            row = measure(size, Path(folder))
            rows.append(row)
            if "error" in row:
                print(f"{size:>10} {row['file_mib']:>9.1f} refused after {row['refused_after_s']:.2f} s, peak "
                      f"{row['peak_mib']:.0f} MiB (+{row['over_baseline_mib']:.0f}); {row['lines']:,} lines: {row['error']}")
                continue
            print(
                f"{row['operators']:>10} {row['file_mib']:>9.1f} {row['parse_s']:>8.2f} {row['validate_s']:>11.2f} "
                f"{row['peak_mib']:>9.0f} {row['over_baseline_mib']:>7.0f}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
