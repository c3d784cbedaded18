"""Fidelity of `streamtune calibrate` on the local executor: calibrate on some parallelisms, predict others.

Per job, unfused (every operator its own process, so each is measured on its own), sources flat out,
blackhole sinks: one window with every operator at parallelism 1 and one at 2 are the calibration windows;
`calibrate` fits cost_us, sigma and selectivity to them. Then the job runs at held-out parallelisms and
the calibrated sim's throughput (`calibrate.predicted_throughput`, sharing this machine's cores: the CPU
per source record must fit in them) is compared with what was measured.

    .venv/bin/python benchmarks/bench_calibration.py [--jobs q1,q2,q5] [--window 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _measure(spec, parallelism, window_s: float):  # type: ignore[no-untyped-def]
    from streamtune_cli.executors.local.executor import LocalExecutor

    with LocalExecutor(window_s=window_s, warmup_s=2.0, rate_rps=1e9, fusion=False, sink="blackhole",
                       spec_dir=str(ROOT / "configs" / "nexmark")) as executor:
        executor.deploy(spec, parallelism)
        return executor.observe()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="q1,q2,q5")
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from streamtune_cli.calibrate import Sample, calibrate, predicted_throughput
    from streamtune_cli.spec import load_spec

    cores = len(os.sched_getaffinity(0))
    rows = []
    print(f"{cores} cores; calibration at p=1 and p=2 for every operator, unfused, sources flat out")
    print(f"{'job':<5} {'parallelism':<34} {'measured':>12} {'predicted':>12} {'error':>7}  role")
    for name in args.jobs.split(","):
        spec = load_spec(ROOT / "configs" / "nexmark" / f"{name}.yaml")
        ids = [op.id for op in spec.operators]
        uniform = lambda p: {op: p for op in ids}  # noqa: E731
        samples = []
        for p in (1, 2):
            observation = _measure(spec, uniform(p), args.window)
            samples.append((uniform(p), observation, "calibration"))
        calibrated, _ = calibrate(spec, [Sample(par, obs, "bench") for par, obs, _ in samples])
        heavy = max(ids, key=lambda op: calibrated.operator(op).cost_us)
        held_out = [uniform(3), {**uniform(1), heavy: 2}, {**uniform(2), heavy: 3}]
        for par in held_out:
            samples.append((par, _measure(spec, par, args.window), "held out"))
        for par, observation, role in samples:
            measured = observation.achieved_rate_rps
            predicted = predicted_throughput(calibrated, par, cores=cores)
            error = predicted / measured - 1 if measured else float("inf")
            label = ",".join(str(par[op]) for op in ids)
            print(f"{name:<5} {label:<34} {measured:>12,.0f} {predicted:>12,.0f} {error:>+7.1%}  {role}")
            rows.append({"job": name, "parallelism": par, "measured_rps": measured, "predicted_rps": predicted,
                         "error": error, "role": role})
    held = [r for r in rows if r["role"] == "held out"]
    worst = max(abs(r["error"]) for r in held)
    print(f"held-out windows: {len(held)}, worst error {worst:.1%}, mean absolute error "
          f"{sum(abs(r['error']) for r in held) / len(held):.1%}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
