"""Fidelity of `streamtune calibrate`: calibrate on some parallelisms, predict others, on a real executor.

Per job, sources flat out, blackhole sinks: windows with every unit at parallelism 1 and at 2 (or those of
`--calibrate-at`) are the calibration windows; `calibrate` fits cost_us, sigma (and kappa, from three
parallelisms) and selectivity to them. Then the job runs at held-out parallelisms (every unit one above the
highest calibrated; the heaviest unit at 2, the rest at 1; the heaviest at 3, the rest at 2; and from a
calibration at 3 up, the heaviest at 1, the rest at 3). Each parallelism is deployed `--repeat` times (3),
in rounds that visit every parallelism once (a machine whose speed drifts moves every window alike), and
the deployment with the median throughput is the one used; `spread` is how far apart its deployments
were (max / min - 1), what the machine alone moves a figure by. Three predictions of the calibrated sim
are compared with what was measured, all sharing this machine's cores (`calibrate.predicted_throughput`):

- `cores`: the CPU per source record must fit in the cores the job effectively got in the calibration
  windows (`calibrate.fit_cores`, a mean);
- `contended`: it must fit in the machine's cores, and an instance waits for a core while the others hold
  them all (`calibrate.contention_limit`);
- `preempted`: as `contended`, and a busy instance pays for the preemptions the other instances cause,
  at the machine's preemption cost (`calibrate.fit_preemption`), read from the other jobs' windows of the
  run (never the predicted job's own), or given with `--preemption`.

- `--executor local` (default): the Nexmark specs in configs/nexmark, unfused (every operator a process of
  its own, so each is measured on its own).
- `--executor flink --rest URL`: SQL jobs of configs/flink submitted to a running cluster (`streamtune flink
  up`) as `flink submit --flip27-source` does (their `datagen` tables read through streamtune's FLIP-27
  generator, whose source reports busy time) with no rate limit, imported with `import flink`; a unit is a
  Flink job vertex. Each job is cancelled afterwards.

    .venv/bin/python benchmarks/bench_calibration.py [--jobs q1,q2,q5] [--window 5] [--repeat 3] [--calibrate-at 1,2] [--json out.json]
    .venv/bin/python benchmarks/bench_calibration.py --executor flink --rest http://127.0.0.1:8081 [--window 10]

`--save windows.json` keeps every measured window (its deployments and the spec it measured); `--replay windows.json`
computes the predictions again from them without measuring (the figures of a run, re-read).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
FLINK_JOBS = "q2_filter_unchained,q5_hop_window,bids_per_bidder"


def _local_cases(jobs: list[str], window_s: float) -> Iterator[tuple[str, Any, Callable[[dict[str, int]], Any]]]:
    from streamtune_cli.executors.local.executor import LocalExecutor
    from streamtune_cli.spec import load_spec

    for name in jobs:
        spec = load_spec(ROOT / "configs" / "nexmark" / f"{name}.yaml")

        def measure(parallelism: dict[str, int], spec: Any = spec) -> Any:
            with LocalExecutor(window_s=window_s, warmup_s=2.0, rate_rps=1e9, fusion=False, sink="blackhole",
                               spec_dir=str(ROOT / "configs" / "nexmark")) as executor:
                executor.deploy(spec, parallelism)
                return executor.observe()

        yield name, spec, measure


def _flink_cases(jobs: list[str], window_s: float, rest_url: str) -> Iterator[tuple[str, Any, Callable[[dict[str, int]], Any]]]:
    import yaml

    from streamtune_cli.errors import ExecutorError
    from streamtune_cli.executors.flink import FlinkExecutor
    from streamtune_cli.flink.cluster import submit_sql, with_flip27_generator
    from streamtune_cli.flink.importer import import_flink_job
    from streamtune_cli.flink.rest import FlinkRest
    from streamtune_cli.flink.tuning import vertex_spec
    from streamtune_cli.spec import load_spec_text

    for name in jobs:
        # Through the FLIP-27 generator (its source reports busy time), with no rate limit ('0'): the job
        # runs as fast as the cluster lets it.
        sql = with_flip27_generator((ROOT / "configs" / "flink" / f"{name}.sql").read_text(), rows_per_second=0)
        job_id = submit_sql(rest_url, sql)
        try:
            with FlinkRest(rest_url) as rest:
                data, _ = import_flink_job(rest, job_id, rate_rps=1e9)
            spec = load_spec_text(yaml.safe_dump(data, sort_keys=False), f"{name}.imported.yaml")
            with FlinkExecutor(rest=rest_url, job=job_id, window_s=window_s, warmup_s=max(5.0, window_s / 2), rate_rps=1e9) as executor:
                job = vertex_spec(spec, executor, probe=False)

                def measure(parallelism: dict[str, int], job: Any = job, executor: Any = executor) -> Any:
                    executor.deploy(job, parallelism)
                    return executor.observe()

                yield name, job, measure
        finally:
            with FlinkRest(rest_url) as rest, contextlib.suppress(ExecutorError):  # a failed job is gone already
                rest.cancel(job_id)


def _measure_all(args: argparse.Namespace, calibrate_at: list[int]) -> Iterator[tuple[str, Any, list[tuple[dict[str, int], Any, str]], list[list[Any]]]]:
    """(job, spec, [(parallelism, observation, role)], deployments) per job: the calibration windows, then the
    held-out ones; `observation` is the deployment with the median throughput of the window's `deployments`.

    The deployments are taken in rounds, each visiting every parallelism once (the calibration ones, then
    the held-out ones): a machine whose speed drifts over the minutes a job takes then moves every window
    alike, where back-to-back deployments of one parallelism would pin the drift on it. The first round's
    calibration windows name the heaviest unit, which places the held-out windows."""
    from streamtune_cli.calibrate import Sample, calibrate
    from streamtune_cli.executors.sim import SimDeployment

    if args.executor == "local":
        cases = _local_cases((args.jobs or "q1,q2,q5").split(","), args.window)
    else:
        cases = _flink_cases((args.jobs or FLINK_JOBS).split(","), args.window, args.rest)
    rounds = max(1, args.repeat)
    for name, spec, measure_once in cases:
        ids = [op.id for op in spec.operators]
        uniform = lambda p: {op: p for op in ids}  # noqa: E731
        calibration = [uniform(p) for p in calibrate_at]
        deployments: list[list[Any]] = [[measure_once(par)] for par in calibration]
        calibrated, _ = calibrate(spec, [Sample(par, runs[0], "bench") for par, runs in zip(calibration, deployments)])
        # The heaviest unit: the most CPU per source record (cost x records per source record), not the
        # highest cost per record (a sink behind a window sees a few records a second).
        load = SimDeployment(calibrated, uniform(1)).unit_demand
        heavy = max(ids, key=lambda op: calibrated.operator(op).cost_us * load[op])
        top = max(calibrate_at)
        held_out = [uniform(top + 1), {**uniform(1), heavy: 2}, {**uniform(2), heavy: 3}]
        if top >= 3:
            held_out.append({**uniform(3), heavy: 1})
        deployments += [[measure_once(par)] for par in held_out]
        every = calibration + held_out
        for _ in range(rounds - 1):
            for par, runs in zip(every, deployments):
                runs.append(measure_once(par))
        roles = ["calibration"] * len(calibration) + ["held out"] * len(held_out)
        windows = [(par, _median(runs), role) for par, runs, role in zip(every, deployments, roles)]
        yield name, spec, windows, deployments


def _median(runs: list[Any]) -> Any:
    """The deployment with the median throughput (the upper one of an even count)."""
    ordered = sorted(runs, key=lambda o: o.achieved_rate_rps)
    return ordered[len(ordered) // 2]


def _spread(runs: list[Any]) -> float | None:
    """How far apart the deployments of one parallelism were: max / min - 1 of their throughput."""
    rates = [o.achieved_rate_rps for o in runs]
    if len(rates) < 2 or min(rates) <= 0:
        return None
    return max(rates) / min(rates) - 1


def _replayed(path: Path) -> tuple[dict[str, Any], list[tuple[str, Any, list[tuple[dict[str, int], Any, str]], list[list[Any]]]]]:
    """A --save file's jobs as _measure_all yields them. A file saved before windows kept their deployments
    (stop 21's) was also saved before an observation carried the machine's core count: its windows get the
    run's `cores` (they were measured on that machine), and each has its median deployment alone."""
    from streamtune_cli.executors.base import Observation
    from streamtune_cli.spec.models import JobSpec

    data = json.loads(path.read_text())
    old_format = not any("deployments" in w for job in data["jobs"] for w in job["windows"])

    def observation(raw: dict[str, Any]) -> Any:
        obs = Observation.model_validate(raw)
        return obs.model_copy(update={"machine_cores": data["cores"]}) if old_format and obs.machine_cores is None else obs

    jobs = []
    for job in data["jobs"]:
        windows = [(w["parallelism"], observation(w["observation"]), w["role"]) for w in job["windows"]]
        deployments = [[observation(o) for o in w["deployments"]] if "deployments" in w else [obs]
                       for w, (_, obs, _) in zip(job["windows"], windows)]
        jobs.append((job["name"], JobSpec.model_validate(job["spec"]), windows, deployments))
    return data, jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=("local", "flink"), default="local")
    parser.add_argument("--rest", default="http://127.0.0.1:8081", help="the Flink cluster's REST address (--executor flink)")
    parser.add_argument("--jobs", help=f"comma-separated (local default q1,q2,q5; flink default {FLINK_JOBS})")
    parser.add_argument("--window", type=float, default=5.0, help="seconds per measured window")
    parser.add_argument("--calibrate-at", default="1,2",
                        help="uniform parallelisms of the calibration windows (default 1,2); the held-out ones are "
                        "one above the highest, the heaviest unit at 2 (rest 1) and at 3 (rest 2), and from 3 up "
                        "the heaviest at 1 (rest 3)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="deployments per parallelism, in rounds that visit every parallelism once; the one with "
                        "the median throughput is used (default 3)")
    parser.add_argument("--json", type=Path, help="the figures, one row per window")
    parser.add_argument("--save", type=Path, help="every measured window and the spec it measured, for --replay")
    parser.add_argument("--replay", type=Path, help="predict from windows a --save run measured; measures nothing")
    parser.add_argument("--preemption", type=float,
                        help="the machine's preemption cost for every job (default: fitted per job to the other jobs' "
                        "windows, calibrate.fit_preemption)")
    args = parser.parse_args(argv)

    from streamtune_cli.calibrate import Sample, calibrate, fit_cores, fit_preemption, predicted_throughput
    from streamtune_cli.machine import available_cores
    from streamtune_cli.spec.loader import spec_to_data

    if args.replay:
        saved, jobs = _replayed(args.replay)
        executor, cores, calibrate_at, repeat = saved["executor"], saved["cores"], saved["calibrate_at"], saved["repeat"]
    else:
        executor, cores, repeat = args.executor, available_cores(), max(1, args.repeat)
        calibrate_at = sorted({int(p) for p in args.calibrate_at.split(",")})
        jobs = _measure_all(args, calibrate_at)
    kept, measured_jobs = [], []
    for name, spec, windows, deployments in jobs:
        kept.append({"name": name, "spec": spec_to_data(spec),
                     "windows": [{"parallelism": par, "observation": obs.model_dump(mode="json"), "role": role,
                                  "deployments": [o.model_dump(mode="json") for o in runs]}
                                 for (par, obs, role), runs in zip(windows, deployments)]})
        if args.save:  # after every job: an interrupted run keeps what it measured
            args.save.write_text(json.dumps({"executor": executor, "cores": cores, "calibrate_at": calibrate_at,
                                             "repeat": repeat, "window_s": args.window, "jobs": kept}, indent=1))
        calibrated, _ = calibrate(spec, [Sample(par, obs, "bench") for par, obs, role in windows if role == "calibration"])
        measured_jobs.append((name, spec, windows, deployments, calibrated))
        if not args.replay:
            print(f"measured {name}: {len(windows)} parallelisms", file=sys.stderr, flush=True)

    # The cores the job ran on: what its windows say (a Flink cluster's task manager hosts), else this machine's.
    machine = {obs.machine_cores for job in measured_jobs for _, obs, _ in job[2] if obs.machine_cores}
    if len(machine) == 1:
        cores = machine.pop()
    print(f"{executor} executor, {cores} cores; calibration at p={','.join(map(str, calibrate_at))} for every unit, sources flat out; "
          + (f"median of {repeat} deployments per parallelism" if repeat > 1 else "one deployment per parallelism")
          + (f" (replayed from {args.replay})" if args.replay else ""))
    print(f"{'job':<22} {'parallelism':<12} {'measured':>10} {'cores':>7} {'contended':>10} {'error':>7} "
          f"{'preempted':>10} {'error':>7} {'used':>5} {'spread':>6}  role")
    rows, spreads = [], []
    for index, (name, spec, windows, deployments, calibrated) in enumerate(measured_jobs):
        ids = [op.id for op in spec.operators]
        calibration = [Sample(par, obs, "bench") for par, obs, role in windows if role == "calibration"]
        effective = fit_cores(calibrated, calibration)
        usable = min(float(cores), effective) if effective is not None else float(cores)
        # The machine's preemption cost, from the other jobs' windows on it (none of this job's).
        others = [(other[4], par, obs.achieved_rate_rps)
                  for k, other in enumerate(measured_jobs) if k != index for par, obs, _ in other[2]]
        if args.preemption is not None:
            preemption, whence = args.preemption, "--preemption"
        else:
            preemption, whence = (fit_preemption(others, cores), "the other jobs' windows") if others else (0.0, "no other job")
        print(f"{name}: effective cores {usable:.2f} of {cores}" + ("" if effective is not None else " (no window held back by the machine)")
              + f"; preemption {preemption:.2f} (from {whence})")
        for (par, observation, role), runs in zip(windows, deployments):
            measured = observation.achieved_rate_rps
            spread = _spread(runs)
            if spread is not None:
                spreads.append(spread)
            predictions = (
                predicted_throughput(calibrated, par, cores=usable),
                predicted_throughput(calibrated, par, cores=cores, contention=True),
                predicted_throughput(calibrated, par, cores=cores, contention=True, preemption=preemption),
            )
            error, error2, error3 = (value / measured - 1 if measured else float("inf") for value in predictions)
            label = ",".join(str(par[op]) for op in ids)
            used = f"{observation.cpu_cores:.2f}" if observation.cpu_cores is not None else "-"
            shown = f"{spread:.1%}" if spread is not None else "-"
            print(f"{name[:22]:<22} {label:<12} {measured:>10,.0f} {error:>+7.1%} {predictions[1]:>10,.0f} {error2:>+7.1%} "
                  f"{predictions[2]:>10,.0f} {error3:>+7.1%} {used:>5} {shown:>6}  {role}", flush=True)
            rows.append({"job": name, "parallelism": par, "measured_rps": measured, "predicted_rps": predictions[0],
                         "error": error, "contended_rps": predictions[1], "contended_error": error2,
                         "preempted_rps": predictions[2], "preempted_error": error3, "preemption": preemption,
                         "cpu_cores": observation.cpu_cores, "spread": spread, "role": role})
    held = [r for r in rows if r["role"] == "held out"]
    labels = (("error", f"held-out windows: {len(held)}; effective cores:"), ("contended_error", "with contention:"),
              ("preempted_error", "with contention and preemption:"))
    for key, label in labels:
        if held:
            errors = [abs(r[key]) for r in held]
            within = sum(e <= 0.15 for e in errors)
            print(f"{label} worst error {max(errors):.1%}, mean absolute error {sum(errors) / len(errors):.1%}, "
                  f"{within} of {len(errors)} within 15%")
    if spreads:
        ordered = sorted(spreads)
        print(f"deployments of one parallelism: spread up to {ordered[-1]:.1%}, median {ordered[len(ordered) // 2]:.1%} "
              "(max / min - 1 of their throughput)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
