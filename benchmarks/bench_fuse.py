"""Benchmark `streamtune fuse`. Prints the figures; asserts nothing.

Timing (default): a generated 500-operator job, wall time of the CLI end to end (what a CI gate pays) and of
the spec loader and the planner alone, for both modes. Without --no-sql the loader checks every SQL
expression.

    .venv/bin/python benchmarks/bench_fuse.py [--operators 500] [--runs 5] [--seed 7]

Plans (--configs): for every shipped job spec (configs/**/*.yaml that loads as one), the joint plan's
estimated total tasks and CPU against Flink's chaining at the oracle's parallelism (the parallelism the job
needs at its peak rate, operator by operator), and the unfused job at that parallelism; a Markdown table.

    .venv/bin/python benchmarks/bench_fuse.py --configs
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

COLUMNS = ["auction", "bidder", "price", "category"]


def generate_spec(n_operators: int, seed: int) -> dict[str, Any]:
    """A job of `n_operators` operators: a few sources, long stateless runs (some with SQL semantics), keyed
    aggregations behind hash edges, joins, rebalances where parallelism changes, and a few sinks."""
    rng = random.Random(seed)
    n_sources, n_sinks = max(1, n_operators // 50), max(1, n_operators // 100)
    ops: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    fed: set[str] = set()

    def connect(up: dict[str, Any], down: dict[str, Any], key: str | None = None) -> None:
        if key is not None:
            edge: dict[str, Any] = {"from": up["id"], "to": down["id"], "partitioning": "hash", "key": [key]}
        elif up["parallelism"] == down["parallelism"]:
            edge = {"from": up["id"], "to": down["id"]}
        else:
            edge = {"from": up["id"], "to": down["id"], "partitioning": "rebalance"}
        edges.append(edge)
        fed.add(up["id"])

    for i in range(n_sources):
        ops.append({"id": f"src{i}", "kind": "source", "parallelism": rng.choice([2, 4]), "cost_us": 2.0,
                    "rate_share": rng.choice([1, 3])})
    for i in range(n_operators - n_sources - n_sinks):
        recent = [o for o in ops[-8:] if o["kind"] != "sink"]
        up = rng.choice(recent) if rng.random() < 0.85 else rng.choice(ops)
        kind = rng.choices(["filter", "map", "project", "aggregate", "window_aggregate", "join"], [4, 4, 2, 1, 1, 0.5])[0]
        p = up["parallelism"] if rng.random() < 0.8 else rng.choice([2, 4, 8])
        op: dict[str, Any] = {"id": f"op{i}", "kind": kind, "parallelism": p, "cost_us": rng.choice([0.5, 1.0, 2.0, 4.0])}
        key = None
        if kind == "filter":
            op["selectivity"] = rng.choice([0.1, 0.5, 0.9])
            if rng.random() < 0.5:
                op["predicate"] = f"{rng.choice(COLUMNS)} > {rng.randint(0, 100)}"
        elif kind in ("map", "project") and rng.random() < 0.5:
            op["columns"] = {c: (c if kind == "project" or rng.random() < 0.5 else f"{c} * 2") for c in COLUMNS}
        elif kind in ("aggregate", "window_aggregate"):
            key = rng.choice(COLUMNS)
            op["selectivity"] = 0.1
            if kind == "window_aggregate":
                op["window"] = {"type": "tumble", "size_s": 10}
        ops.append(op)
        if kind == "join":
            other = rng.choice([o for o in ops[:-1] if o["id"] != up["id"] and o["kind"] != "sink"])
            connect(up, op, rng.choice(COLUMNS))
            connect(other, op, rng.choice(COLUMNS))
        else:
            connect(up, op, key)
    sinks = [{"id": f"sink{i}", "kind": "sink", "parallelism": 2} for i in range(n_sinks)]
    for op in ops:
        if op["id"] not in fed:
            connect(op, rng.choice(sinks))
    for sink in sinks:
        if not any(e["to"] == sink["id"] for e in edges):
            connect(ops[-1], sink)
    return {"name": f"generated-{n_operators}", "workload": {"rate_rps": 20_000}, "operators": ops + sinks, "edges": edges}


def timed(fn, runs: int) -> list[float]:  # noqa: ANN001
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def describe(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s"


def _cores(cpu_us_per_s: float) -> str:
    return f"{cpu_us_per_s / 1e6:.3f}"


def bench_configs(root: Path) -> None:
    """The joint plan vs Flink's chaining at the oracle's parallelism, per shipped job spec (Markdown)."""
    from streamtune_cli.definitions import peak_target_rate_rps
    from streamtune_cli.errors import StreamtuneError
    from streamtune_cli.fusion import plan_fusion
    from streamtune_cli.spec import load_spec

    header = (
        "| config | peak rec/s | unfused at oracle p: tasks / cores | Flink chaining at oracle p: tasks / cores "
        "/ keeps up | joint plan: tasks / cores / keeps up | joint vs Flink: tasks / cores |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|")
    skipped = []
    for path in sorted((root / "configs").glob("**/*.yaml")):
        name = str(path.relative_to(root))
        try:
            spec = load_spec(path, check_sql_expressions=False)
        except StreamtuneError:
            skipped.append(name)  # bench suites and gate rules are not job specs
            continue
        rate = peak_target_rate_rps(spec.workload.rate_rps, spec.workload.schedule, path.parent)
        plan = plan_fusion(spec, rate_rps=rate)
        oracle, flink, joint = plan.compared["oracle"], plan.compared["flink_oracle"], plan.compared["joint"]

        def keeps(estimate) -> str:  # noqa: ANN001
            return "yes" if estimate.max_utilization <= 1 + 1e-9 else f"no ({estimate.max_utilization:.2f}x)"

        print(
            f"| {name} | {rate:,.0f} | {oracle.tasks} / {_cores(oracle.cpu_us_per_s)} "
            f"| {flink.tasks} / {_cores(flink.cpu_us_per_s)} / {keeps(flink)} "
            f"| {joint.tasks} / {_cores(joint.cpu_us_per_s)} / {keeps(joint)} "
            f"| {joint.tasks - flink.tasks:+d} / {(joint.cpu_us_per_s - flink.cpu_us_per_s) / 1e6:+.3f} |"
        )
    print(f"\nnot job specs (skipped): {', '.join(skipped)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operators", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--configs", action="store_true", help="the joint plan vs Flink's chaining on every shipped job spec")
    args = parser.parse_args()
    if args.configs:
        bench_configs(Path(__file__).resolve().parents[1])
        return

    from streamtune_cli.fusion import plan_fusion
    from streamtune_cli.spec import load_spec

    data = generate_spec(args.operators, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        spec = load_spec(path)
        print(f"spec: {len(spec.operators)} operators, {len(spec.edges)} edges (seed {args.seed})")
        print(f"load_spec: {describe(timed(lambda: load_spec(path), args.runs))}")
        for mode in ("ours", "flink"):
            plan = plan_fusion(spec, mode=mode)
            summary = plan.summary()
            print(
                f"plan_fusion --mode {mode}: {describe(timed(lambda m=mode: plan_fusion(spec, mode=m), args.runs))}; "
                f"{summary['vertices']} vertices, {summary['chains']} chains, {summary['fused_edges']} fused edges, "
                f"{plan.rounds} rounds"
            )
        exe = str(Path(sys.executable).with_name("streamtune"))
        variants = (
            (["--json", "-"], "JSON to stdout"),
            (["--json", "-", "--no-sql"], "JSON to stdout, SQL not parsed"),
            ([], "tables"),
        )
        for mode in ("ours", "flink"):
            for extra, label in variants:
                command = [exe, "fuse", str(path), "--mode", mode, *extra]
                times = timed(lambda c=command: subprocess.run(c, check=True, capture_output=True), args.runs)
                print(f"streamtune fuse --mode {mode} ({label}), end to end: {describe(times)}")


if __name__ == "__main__":
    main()
