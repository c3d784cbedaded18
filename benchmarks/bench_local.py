"""Benchmark the local executor: throughput per core of Nexmark jobs, and what a process boundary costs.

Every operator runs one instance and the sources run flat out (far more input offered than the job can
take), once fused (Flink's chains in one process) and once unfused (one process per operator). Per run:

- records/s: what the sources ingested per second of the measured window;
- cores: the job's processes' CPU seconds per second (1.0 = one core busy);
- records/s per core: records/s / cores, the efficiency that does not depend on how many cores there are;
- CPU µs/record and bytes serialized/record (Arrow IPC across process boundaries), per source record.

The cost of a process boundary is the extra CPU per source record of the unfused run over the fused one,
divided by the boundaries that fusion removes. Both runs of a job happen back to back in one invocation, so
compare the ratios, not absolute figures across machines.

With --cores N every process of both runs is pinned to the same N CPUs: the same CPU budget, so the
throughput ratio is what fusion saves; without it the unfused run may also spread over more cores.

    .venv/bin/python benchmarks/bench_local.py [--jobs q1,q2,q5] [--window 10] [--cores N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="q1,q2,q5", help="Nexmark jobs from configs/nexmark (comma-separated)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per run (after 3 s warm-up)")
    parser.add_argument("--cores", type=int, help="pin both runs to this many CPUs (default: every CPU)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    from streamtune_cli.fusion.measure import measure_fusion
    from streamtune_cli.spec import load_spec
    from streamtune_cli.executors.local.plan import chain_groups

    rows = []
    print(f"{'job':<6} {'run':<8} {'procs':>5} {'records/s':>12} {'cores':>6} {'rec/s/core':>12} "
          f"{'CPU µs/rec':>10} {'ser. B/rec':>10}")
    for name in args.jobs.split(","):
        spec = load_spec(ROOT / "configs" / "nexmark" / f"{name}.yaml")
        ones = {op.id: 1 for op in spec.operators}
        result = measure_fusion(spec, ones, window_s=args.window, spec_dir=str(ROOT / "configs" / "nexmark"), cores=args.cores)
        single = spec.with_parallelism(ones)
        chain_of = {m: i for i, group in enumerate(chain_groups(single, True)) for m in group}
        removed = sum(1 for e in single.edges if chain_of[e.src] == chain_of[e.dst])  # edges fusion keeps in-process
        for run in result.runs:
            cores = run.cores_used
            row = {
                "job": name,
                "pinned_cores": args.cores,
                "run": "fused" if run.fused else "unfused",
                "processes": run.processes,
                "records_per_s": run.throughput_rps,
                "cores": cores,
                "records_per_s_per_core": run.throughput_rps / cores if cores else 0.0,
                "cpu_us_per_record": run.cpu_us_per_record,
                "serialized_bytes_per_record": run.serialized_bytes_per_record,
            }
            rows.append(row)
            print(f"{name:<6} {row['run']:<8} {run.processes:>5} {run.throughput_rps:>12,.0f} {cores:>6.2f} "
                  f"{row['records_per_s_per_core']:>12,.0f} {run.cpu_us_per_record:>10.3f} "
                  f"{run.serialized_bytes_per_record:>10.1f}")
        unfused, fused = result.runs
        boundaries = max(1, removed)
        overhead = (unfused.cpu_us_per_record - fused.cpu_us_per_record) / boundaries
        print(f"{name:<6} fused/unfused throughput x{result.speedup:.2f} (cost model x{result.predicted_speedup:.2f}); "
              f"{boundaries} boundaries removed, {overhead:.3f} CPU µs per source record each")
        rows.append({"job": name, "speedup": result.speedup, "predicted_speedup": result.predicted_speedup,
                     "boundaries_removed": boundaries, "boundary_cpu_us_per_record": overhead})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
