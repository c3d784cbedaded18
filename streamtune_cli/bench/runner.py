"""Running a suite: every tuner on the same cases in one run, each run judged strictly by the harness.

A tuner sees only what the loop gives it (a JobView and measurements). The harness, and only the
harness, then checks the final deployment against the executor's ground truth with noise off: does it
truly sustain the peak, how much lag is left, and how long that lag takes to drain.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from streamtune_cli.bench.suite import LoadedSuite, apply_regime, scale_workload
from streamtune_cli.errors import UsageError
from streamtune_cli.spec.models import JobSpec

__all__ = ["run_suite", "judge_run", "ground_truth", "FAILURE_KINDS"]

# Why a run failed, worst first; a run that converged and keeps up has no failure.
FAILURE_KINDS = {
    "missed": "the final deployment does not sustain the peak (as measured, or with noise off)",
    "stalled": "stopped without keeping up: no change proposed, held at the bounds, or the tuner gave up",
    "oscillated": "out of steps after going back to a parallelism it had already deployed",
    "unconverged": "out of steps, still changing",
    "slow_drain": "keeps up, but the lag left would take longer than the drain bound to clear",
}
_STALLED_STOPS = ("stalled", "at_bounds", "tuner_converged")


def ground_truth(spec: JobSpec, parallelism: dict[str, int], peak_rps: float, lag_records: float) -> dict[str, Any]:
    """Noise-free facts about a deployment, from the sim model of the spec (the bench's reference).

    truly_keeps_up: the tightest operator's capacity covers the peak. drain_s: seconds to clear
    `lag_records` at the peak with the spare rate left there (None when it never drains).
    """
    from streamtune_cli.definitions import RATE_TOLERANCE
    from streamtune_cli.executors.sim import SimDeployment

    max_rps = SimDeployment(spec, parallelism).max_ingest_rps
    truly = max_rps >= peak_rps * (1 - RATE_TOLERANCE)
    if lag_records <= 0:
        drain_s: float | None = 0.0
    elif max_rps > peak_rps and math.isfinite(max_rps):
        drain_s = lag_records / (max_rps - peak_rps)
    else:
        drain_s = None
    return {
        "truly_keeps_up": bool(truly),
        "peak_headroom": (max_rps / peak_rps) if math.isfinite(max_rps) else None,
        "drain_s": drain_s,
    }


def _oscillated(trace: Any) -> bool:
    seen: list[dict[str, int]] = []
    for step in trace.steps:
        if seen and step.parallelism != seen[-1] and step.parallelism in seen:
            return True
        seen.append(step.parallelism)
    return False


def judge_run(trace: Any, spec: JobSpec, peak_rps: float, true_lag_records: float, drain_bound_s: float) -> dict[str, Any]:
    """The bench's verdict on one tuning: strict target, ground truth, drain time, failure kind."""
    meta = trace.meta
    truth = ground_truth(spec, meta["final_parallelism"], peak_rps, true_lag_records)
    drain_s = truth["drain_s"]
    drained = drain_s is not None and drain_s <= drain_bound_s
    stop = meta["stop_reason"]
    met = bool(meta["target_met"])
    keeps_up = met and truth["truly_keeps_up"]
    failure: str | None
    if stop in _STALLED_STOPS:
        failure = "stalled"
    elif stop == "max_steps":
        failure = "oscillated" if _oscillated(trace) else "unconverged"
    elif not keeps_up:
        failure = "missed"
    elif not drained:
        failure = "slow_drain"
    else:
        failure = None
    return {
        "target_met": met,
        "truly_keeps_up": truth["truly_keeps_up"],
        "peak_headroom": truth["peak_headroom"],
        "final_lag_records": float(true_lag_records),
        "drain_s": drain_s,
        "drained": drained,
        "converged": stop == "converged" and failure is None,
        "failure": failure,
    }


def _environment(elapsed_s: float, started: datetime) -> dict[str, Any]:
    import numpy

    from streamtune_cli import __version__

    return {
        "streamtune": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed_s, 3),
    }


def _initial_parallelism(spec: JobSpec, setting: int | str) -> dict[str, int]:
    if setting == "spec":
        return dict(spec.parallelism)
    return {op.id: min(int(setting), op.max_parallelism) for op in spec.operators}


def _true_lag(executor: Any, trace: Any) -> float:
    # The sim knows its exact backlog; any other executor reports what it measured.
    lag = getattr(executor, "lag_records", None)
    return float(lag) if isinstance(lag, (int, float)) else float(trace.steps[-1].observation.lag_records)


def run_suite(
    loaded: LoadedSuite,
    *,
    tuners: list[str] | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the whole suite; returns the bench document (config, per-run rows, aggregates, failures).

    Every tuner runs on the same (job, rate, regime, seed) cases from the same start, so rows are paired.
    Rows, aggregates and failure lists depend only on the suite and the code, not on timing.
    """
    from streamtune_cli.bench.aggregate import ORACLE_ROW, aggregate_runs, failures_by_tuner, oracle_aggregate
    from streamtune_cli.definitions import peak_target_rate_rps
    from streamtune_cli.executors.registry import make_executor
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning
    from streamtune_cli.tuning.oracle import oracle_parallelism
    from streamtune_cli.tuning.tuners import make_tuner

    suite = loaded.suite
    tuners = list(tuners or suite.tuners)
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    config = TuningConfig(max_steps=suite.max_steps, max_parallelism=suite.max_parallelism)
    continuous = suite.protocol == "continuous"
    rows: list[dict[str, Any]] = []
    infeasible: list[dict[str, Any]] = []
    oracles: dict[tuple[str, float, str], Any] = {}

    def case(job_path: Path, base_spec: JobSpec, rate_factor: float, regime: Any) -> tuple[JobSpec, float, Any, dict]:
        spec = apply_regime(scale_workload(base_spec, rate_factor, suite.schedule), regime)
        peak_rps = peak_target_rate_rps(spec.workload.rate_rps, spec.workload.schedule, job_path.parent)
        key = (str(job_path), rate_factor, regime.name)
        if key not in oracles:
            oracle = oracle_parallelism(spec, peak_rps, max_parallelism=suite.max_parallelism)
            oracles[key] = oracle
            if not oracle.feasible:
                infeasible.append(
                    {
                        "job": spec.name, "job_file": str(job_path), "rate_factor": rate_factor,
                        "rate_rps": spec.workload.rate_rps, "regime": regime.name, "reason": oracle.reason,
                        "infeasible_operators": list(oracle.infeasible_operators),
                    }
                )
        info = {
            "job": spec.name,
            "job_file": str(job_path),
            "rate_factor": rate_factor,
            "rate_rps": spec.workload.rate_rps,
            "peak_rate_rps": peak_rps,
            "regime": regime.name,
        }
        return spec, peak_rps, oracles[key], info

    def record(info: dict, seed: int, tuner_name: str, level: int | None, spec: JobSpec, peak_rps: float,
               oracle: Any, initial: dict[str, int], trace: Any, executor: Any, tuner: Any) -> None:
        meta = trace.meta
        verdict = judge_run(trace, spec, peak_rps, _true_lag(executor, trace), suite.drain_bound_s)
        final_total = int(meta["final_total"])
        row = {
            **info,
            "protocol": suite.protocol,
            "level": level,
            "seed": seed,
            "tuner": tuner_name,
            "feasible": bool(oracle.feasible),
            "oracle_total": int(oracle.total) if oracle.feasible else None,
            "initial_total": sum(initial.values()),
            "final_total": final_total,
            "ratio_to_oracle": final_total / oracle.total if oracle.feasible and oracle.total else None,
            "reconfigurations": int(meta["reconfigurations"]),
            **verdict,
            "backpressured_windows": int(meta["backpressured_windows"]),
            "steps": int(meta["steps"]),
            "stop_reason": meta["stop_reason"],
            "final_parallelism": dict(meta["final_parallelism"]),
        }
        info_of = getattr(tuner, "run_info", None)
        if callable(info_of):
            row["tuner_info"] = info_of()
        rows.append(row)
        if on_run is not None:
            on_run(row)

    for job_path, base_spec in loaded.jobs:
        executor_args = {"spec_dir": str(job_path.parent), **suite.executor_options}
        for regime in suite.regimes:
            if not continuous:
                for rate_factor in suite.rate_factors:
                    spec, peak_rps, oracle, info = case(job_path, base_spec, rate_factor, regime)
                    initial = _initial_parallelism(spec, suite.initial_parallelism)
                    for seed in suite.seeds:
                        for tuner_name in tuners:
                            base, options = loaded.tuner_spec(tuner_name)
                            tuner = make_tuner(base, **options)
                            with make_executor(suite.executor, seed=seed, **executor_args) as executor:
                                trace = run_tuning(spec, executor, tuner, config, seed=seed, initial_parallelism=initial)
                                record(info, seed, tuner_name, None, spec, peak_rps, oracle, initial, trace, executor, tuner)
                continue
            levels = [case(job_path, base_spec, factor, regime) for factor in suite.rates]
            for seed in suite.seeds:
                for tuner_name in tuners:
                    # One tuner object and one running job for the whole sequence of levels.
                    base, options = loaded.tuner_spec(tuner_name)
                    tuner = make_tuner(base, **options)
                    with make_executor(suite.executor, seed=seed, **executor_args) as executor:
                        current = _initial_parallelism(levels[0][0], suite.initial_parallelism)
                        history: list[Any] = []
                        for index, (spec, peak_rps, oracle, info) in enumerate(levels):
                            if index:
                                if not hasattr(executor, "set_base_rate"):
                                    raise UsageError(
                                        f"executor {suite.executor!r} cannot change the offered rate of a running "
                                        "job, which the continuous protocol needs; use protocol: cold"
                                    )
                                executor.set_base_rate(spec.workload.rate_rps)
                            initial = dict(current)
                            trace = run_tuning(
                                spec, executor, tuner, config, seed=seed, initial_parallelism=initial,
                                deployed=index > 0, prior_steps=history,
                            )
                            record(info, seed, tuner_name, index, spec, peak_rps, oracle, initial, trace, executor, tuner)
                            history += trace.steps
                            current = dict(trace.meta["final_parallelism"])
    elapsed_s = time.perf_counter() - clock
    aggregates = aggregate_runs(rows, tuners)
    aggregates[ORACLE_ROW] = oracle_aggregate(rows)
    by_regime = {}
    for regime in suite.regimes:
        regime_rows = [r for r in rows if r["regime"] == regime.name]
        by_regime[regime.name] = aggregate_runs(regime_rows, tuners)
        by_regime[regime.name][ORACLE_ROW] = oracle_aggregate(regime_rows)
    return {
        "format_version": 2,
        "schema": "streamtune.bench/2",
        "suite": suite.name,
        "suite_file": str(loaded.path),
        "config": {**suite.model_dump(mode="json"), "tuners": tuners},
        "runs": rows,
        "aggregates": aggregates,
        "by_regime": by_regime,
        "failures": failures_by_tuner(rows, tuners),
        "failure_kinds": FAILURE_KINDS,
        "infeasible": infeasible,
        "environment": _environment(elapsed_s, started),
    }
