"""Benchmark suites: every tuner on every job x rate x scaling regime x seed in the sim executor, scored
against the oracle (reconfigurations, footprint / oracle, backpressured windows, target met, converged).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from streamtune_cli.errors import Problem, SpecError, UsageError
from streamtune_cli.report.markdown import fmt_ratio
from streamtune_cli.spec.models import MAX_PARALLELISM_BOUND, ConstantSchedule, JobSpec, KeySkew, Partitioning, Scaling

__all__ = [
    "suite_from_doc",
    "REGIME_PRESETS",
    "Regime",
    "BenchSuite",
    "LoadedSuite",
    "load_suite",
    "parse_tuner_list",
    "apply_regime",
    "scale_workload",
    "plan_size",
    "run_suite",
    "aggregate_runs",
    "oracle_aggregate",
    "AGGREGATE_HEADERS",
    "aggregate_table_rows",
    "bench_markdown",
    "bench_rich_tables",
]

ORACLE_ROW = "oracle"


class _Strict(BaseModel):
    # inf and NaN are never a meaningful rate factor, noise or window length.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Named regimes a suite can list by name. "skewed" keeps sub-linear scaling and adds Zipf(0.8) key skew on
# every hash-partitioned input: the case where per-instance rates mislead DS2-style linear extrapolation.
REGIME_PRESETS: dict[str, dict[str, Any]] = {
    "linear": {"name": "linear", "scaling": "linear", "skew": "none"},
    "sublinear": {"name": "sublinear", "scaling": "spec", "skew": "none"},
    "skewed": {"name": "skewed", "scaling": "spec", "skew": {"zipf_s": 0.8, "keys": 10_000}},
}


class Regime(_Strict):
    """How operator scaling is rewritten for a run.

    scaling: "linear" (sigma = kappa = 0), "spec" (the spec's values or the kind defaults), or
    {sigma, kappa} for every operator. skew: "none", "spec" (as the spec declares it), or {zipf_s, keys}
    on every operator with a hash-partitioned input.
    """

    name: Annotated[str, Field(min_length=1)]
    scaling: Scaling | None = Field(default=None, description="None: keep the spec's scaling")
    skew: KeySkew | None = None
    keep_spec_skew: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data not in REGIME_PRESETS:
                raise ValueError(
                    f"unknown regime {data!r}: use one of {', '.join(REGIME_PRESETS)} or a mapping with name, scaling, skew"
                )
            data = REGIME_PRESETS[data]
        if not isinstance(data, dict):
            return data
        data = dict(data)
        scaling = data.get("scaling", "spec")
        if scaling == "linear":
            data["scaling"] = {"sigma": 0.0, "kappa": 0.0}
        elif scaling == "spec":
            data["scaling"] = None
        elif isinstance(scaling, str):
            raise ValueError(f"regime scaling {scaling!r}: use linear, spec, or a mapping {{sigma, kappa}}")
        skew = data.get("skew", "none")
        if skew in ("none", "spec"):
            data["skew"] = None
            data["keep_spec_skew"] = skew == "spec"
        elif isinstance(skew, str):
            raise ValueError(f"regime skew {skew!r}: use none, spec, or a mapping {{zipf_s, keys}}")
        return data


class BenchSuite(_Strict):
    """A benchmark suite file (configs/bench/*.yaml); job paths are relative to the suite file."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    jobs: list[str] = Field(min_length=1)
    rate_factors: list[PositiveFloat] = Field(default=[1.0], min_length=1)
    regimes: list[Regime] = Field(default_factory=lambda: [Regime.model_validate(r) for r in REGIME_PRESETS])
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default=[0], min_length=1)
    tuners: list[str] = Field(min_length=1)
    tuner_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    initial_parallelism: PositiveInt | Literal["spec"] = Field(
        default=1, description="every operator starts here (an int), or at the spec's own parallelism"
    )
    schedule: Literal["constant", "spec"] = Field(
        default="constant", description="constant: a flat target at rate_factor x the job's rate; spec: keep its schedule"
    )
    max_steps: PositiveInt = 10
    max_parallelism: Annotated[int, Field(ge=1, le=MAX_PARALLELISM_BOUND)] | None = None
    noise: Annotated[float, Field(ge=0, le=0.5)] = 0.02
    window_s: PositiveFloat = 30.0
    warmup_s: Annotated[float, Field(ge=0)] = 30.0

    @model_validator(mode="after")
    def _unique(self) -> "BenchSuite":
        for what, values in (
            ("regime name", [r.name for r in self.regimes]),
            ("tuner", self.tuners),
            ("seed", self.seeds),
            ("rate factor", self.rate_factors),
        ):
            duplicates = sorted({str(v) for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")
        return self


@dataclass(frozen=True)
class LoadedSuite:
    suite: BenchSuite
    path: Path
    jobs: list[tuple[Path, JobSpec]] = field(default_factory=list)


def _tuner_names() -> tuple[str, ...]:
    from streamtune_cli.tuning.tuners import TUNER_NAMES

    return tuple(TUNER_NAMES)


def load_suite(path: str | Path) -> LoadedSuite:
    """Read and validate a suite and every job it names; all problems carry file:line:col."""
    from streamtune_cli.spec.yaml_positions import load_yaml_file

    return suite_from_doc(load_yaml_file(path), Path(path))


def suite_from_doc(doc: Any, path: Path) -> LoadedSuite:
    """Validate a parsed suite document and load every job it names (see load_suite)."""
    from streamtune_cli.spec.loader import load_spec, validate_model

    suite = validate_model(doc, BenchSuite, "bench suite")

    problems: list[Problem] = []
    known = _tuner_names()
    for i, name in enumerate(suite.tuners):
        if name not in known:
            problems.append(doc.problem(("tuners", i), f"unknown tuner {name!r} (known: {', '.join(known)})"))
    for name, options in suite.tuner_options.items():
        if name not in suite.tuners:
            problems.append(doc.problem(("tuner_options", name), f"options for {name!r}, which is not in tuners"))
        elif name in known:
            problems += _tuner_option_problems(doc, name, options)
    job_paths = []
    for i, job in enumerate(suite.jobs):
        # normpath: rows and messages say configs/nexmark/q3.yaml, not configs/bench/../nexmark/q3.yaml
        job_path = Path(os.path.normpath(path.parent / job))
        if not job_path.is_file():
            problems.append(doc.problem(("jobs", i), f"job file {job!r} not found (looked at {job_path})"))
        job_paths.append(job_path)
    if problems:
        raise SpecError(problems)
    # Job specs report their own problems, positioned in their own files. SQL is irrelevant to the sim.
    jobs = [(p, load_spec(p, check_sql_expressions=False)) for p in job_paths]
    return LoadedSuite(suite=suite, path=path, jobs=jobs)


def _tuner_option_problems(doc: Any, name: str, options: dict[str, Any]) -> list[Problem]:
    """Build the tuner with the suite's options now, so a bad option fails validation, not a run."""
    from streamtune_cli.tuning.tuners import TunerOptionError, make_tuner

    try:
        make_tuner(name, **options)
    except TunerOptionError as exc:
        path = ("tuner_options", name) if exc.option is None else ("tuner_options", name, exc.option)
        return [doc.problem(path, str(exc))]
    return []


def parse_tuner_list(text: str) -> list[str]:
    """`ds2,conttune` from the command line, checked against the known tuners."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--tuners needs at least one tuner name")
    known = _tuner_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown tuner(s) {', '.join(unknown)} in --tuners (known: {', '.join(known)})")
    return list(dict.fromkeys(names))


def apply_regime(spec: JobSpec, regime: Regime) -> JobSpec:
    """The spec with every operator's scaling and key skew rewritten as the regime says."""
    hash_fed = {e.dst for e in spec.edges if e.partitioning == Partitioning.hash}
    operators = []
    for op in spec.operators:
        update: dict[str, Any] = {}
        if regime.scaling is not None:
            update["scaling"] = regime.scaling
        if not regime.keep_spec_skew:
            update["key_skew"] = regime.skew if op.id in hash_fed else None
        operators.append(op.model_copy(update=update))
    return spec.model_copy(update={"operators": operators})


def scale_workload(spec: JobSpec, rate_factor: float, schedule: str = "constant") -> JobSpec:
    """The spec with its workload rate multiplied; `constant` also flattens the schedule."""
    update: dict[str, Any] = {"rate_rps": spec.workload.rate_rps * rate_factor}
    if schedule == "constant":
        update["schedule"] = ConstantSchedule()
    return spec.model_copy(update={"workload": spec.workload.model_copy(update=update)})


def plan_size(loaded: LoadedSuite, tuners: list[str] | None = None) -> int:
    suite = loaded.suite
    return len(loaded.jobs) * len(suite.rate_factors) * len(suite.regimes) * len(suite.seeds) * len(tuners or suite.tuners)


def _initial_parallelism(spec: JobSpec, setting: int | str) -> dict[str, int]:
    if setting == "spec":
        return dict(spec.parallelism)
    return {op.id: min(int(setting), op.max_parallelism) for op in spec.operators}


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


def run_suite(
    loaded: LoadedSuite,
    *,
    tuners: list[str] | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the whole suite; returns the bench document (config, per-run rows, aggregates, environment).

    Every tuner starts from the same initial parallelism on the same (job, rate, regime, seed), so their
    rows are paired. Rows, aggregates and infeasible cases depend only on the suite and code, not on timing.
    """
    from streamtune_cli.executors.schedules import schedule_peak_factor
    from streamtune_cli.executors.sim import SimExecutor
    from streamtune_cli.report.trace_report import trace_summary
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning
    from streamtune_cli.tuning.oracle import oracle_parallelism
    from streamtune_cli.tuning.tuners import make_tuner

    suite = loaded.suite
    tuners = list(tuners or suite.tuners)
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    config = TuningConfig(max_steps=suite.max_steps, max_parallelism=suite.max_parallelism)
    rows: list[dict[str, Any]] = []
    infeasible: list[dict[str, Any]] = []
    for job_path, base_spec in loaded.jobs:
        for rate_factor in suite.rate_factors:
            for regime in suite.regimes:
                spec = apply_regime(scale_workload(base_spec, rate_factor, suite.schedule), regime)
                # At the schedule's peak, as the tuning loop scores it (a constant schedule's peak is 1).
                peak_rps = spec.workload.rate_rps * schedule_peak_factor(spec.workload.schedule, job_path.parent)
                oracle = oracle_parallelism(spec, peak_rps, max_parallelism=suite.max_parallelism)
                case = {
                    "job": spec.name,
                    "job_file": str(job_path),
                    "rate_factor": rate_factor,
                    "rate_rps": spec.workload.rate_rps,
                    "regime": regime.name,
                }
                if not oracle.feasible:
                    infeasible.append(
                        {**case, "reason": oracle.reason, "infeasible_operators": list(oracle.infeasible_operators)}
                    )
                initial = _initial_parallelism(spec, suite.initial_parallelism)
                for seed in suite.seeds:
                    for tuner_name in tuners:
                        executor = SimExecutor(
                            seed=seed, noise=suite.noise, window_s=suite.window_s, warmup_s=suite.warmup_s,
                            spec_dir=str(job_path.parent),
                        )
                        try:
                            tuner = make_tuner(tuner_name, **suite.tuner_options.get(tuner_name, {}))
                            trace = run_tuning(spec, executor, tuner, config, seed=seed, initial_parallelism=initial)
                        finally:
                            executor.close()
                        summary = trace_summary(trace, oracle.parallelism if oracle.feasible else None)
                        row = {
                            **case,
                            "seed": seed,
                            "tuner": tuner_name,
                            "feasible": bool(oracle.feasible),
                            "oracle_total": int(oracle.total) if oracle.feasible else None,
                            "initial_total": sum(initial.values()),
                            "final_total": summary["final_total_parallelism"],
                            "ratio_to_oracle": summary.get("final_over_oracle"),
                            "reconfigurations": summary["reconfigurations"],
                            "converged": summary["converged"],
                            "target_met": summary["target_met"],
                            "backpressured_windows": summary["backpressured_windows"],
                            "steps": summary["steps"],
                            "stop_reason": summary["stop_reason"],
                            "final_parallelism": summary["final_parallelism"],
                        }
                        rows.append(row)
                        if on_run is not None:
                            on_run(row)
    elapsed_s = time.perf_counter() - clock
    aggregates = aggregate_runs(rows, tuners)
    aggregates[ORACLE_ROW] = oracle_aggregate(rows)
    regimes = [r.name for r in suite.regimes]
    by_regime = {}
    for regime_name in regimes:
        regime_rows = [r for r in rows if r["regime"] == regime_name]
        by_regime[regime_name] = aggregate_runs(regime_rows, tuners)
        by_regime[regime_name][ORACLE_ROW] = oracle_aggregate(regime_rows)
    return {
        "format_version": 1,
        "suite": suite.name,
        "suite_file": str(loaded.path),
        "config": {**suite.model_dump(mode="json"), "tuners": tuners},
        "runs": rows,
        "aggregates": aggregates,
        "by_regime": by_regime,
        "infeasible": infeasible,
        "environment": _environment(elapsed_s, started),
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def aggregate_runs(rows: list[dict[str, Any]], tuners: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per tuner, over runs whose oracle is feasible; infeasible runs are only counted.

    reconfigurations: as the tuning loop counts them until it stopped (converged or out of steps);
    ratio: final total parallelism / oracle total; fractions are of feasible runs.
    """
    names = list(tuners) if tuners is not None else list(dict.fromkeys(r["tuner"] for r in rows))
    result: dict[str, dict[str, Any]] = {}
    for name in names:
        mine = [r for r in rows if r["tuner"] == name]
        ok = [r for r in mine if r["feasible"]]
        reconfigurations = [float(r["reconfigurations"]) for r in ok]
        ratios = [float(r["ratio_to_oracle"]) for r in ok if r["ratio_to_oracle"] is not None]
        result[name] = {
            "runs": len(ok),
            "infeasible_runs": len(mine) - len(ok),
            "reconfigurations_mean": _mean(reconfigurations),
            "reconfigurations_max": _max(reconfigurations),
            "ratio_to_oracle_mean": _mean(ratios),
            "ratio_to_oracle_max": _max(ratios),
            "final_total_mean": _mean([float(r["final_total"]) for r in ok]),
            "backpressured_windows_mean": _mean([float(r["backpressured_windows"]) for r in ok]),
            "target_met_fraction": _mean([1.0 if r["target_met"] else 0.0 for r in ok]),
            "converged_fraction": _mean([1.0 if r["converged"] else 0.0 for r in ok]),
        }
    return result


def oracle_aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The reference row: the oracle's footprint over the same feasible (job, rate, regime, seed) cases."""
    cases: dict[tuple[Any, ...], int] = {}
    for r in rows:
        if r["feasible"]:
            cases[(r["job_file"], r["rate_factor"], r["regime"], r["seed"])] = int(r["oracle_total"])
    totals = [float(t) for t in cases.values()]
    return {
        "runs": len(totals),
        "infeasible_runs": 0,
        "reconfigurations_mean": None,
        "reconfigurations_max": None,
        "ratio_to_oracle_mean": 1.0 if totals else None,
        "ratio_to_oracle_max": 1.0 if totals else None,
        "final_total_mean": _mean(totals),
        "backpressured_windows_mean": None,
        "target_met_fraction": None,
        "converged_fraction": None,
    }


AGGREGATE_HEADERS = [
    "tuner",
    "runs",
    "infeasible",
    "reconfig. mean / max",
    "p/oracle mean / max",
    "final p mean",
    "bp windows mean",
    "target met",
    "converged",
]
_NUMERIC = [False] + [True] * (len(AGGREGATE_HEADERS) - 1)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def aggregate_table_rows(aggregates: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Display rows (AGGREGATE_HEADERS order), the oracle last."""
    names = [n for n in aggregates if n != ORACLE_ROW] + ([ORACLE_ROW] if ORACLE_ROW in aggregates else [])
    rows = []
    for name in names:
        a = aggregates[name]
        rows.append(
            [
                name,
                str(a["runs"]),
                str(a["infeasible_runs"]),
                f"{fmt_ratio(a['reconfigurations_mean'], 2)} / {fmt_ratio(a['reconfigurations_max'], 0)}",
                f"{fmt_ratio(a['ratio_to_oracle_mean'], 2)} / {fmt_ratio(a['ratio_to_oracle_max'], 2)}",
                fmt_ratio(a["final_total_mean"], 1),
                fmt_ratio(a["backpressured_windows_mean"], 2),
                _pct(a["target_met_fraction"]),
                _pct(a["converged_fraction"]),
            ]
        )
    return rows


def bench_markdown(result: dict[str, Any]) -> str:
    """The bench as Markdown: overall table, one table per regime, and the infeasible cases."""
    from streamtune_cli.report.markdown import md_cell, md_table

    config = result["config"]
    env = result["environment"]
    out = [f"# Benchmark: {md_cell(result['suite'])}", ""]
    out.append(
        f"{len(result['runs'])} runs: {len(config['jobs'])} jobs x {len(config['rate_factors'])} rate factors x "
        f"{len(config['regimes'])} regimes x {len(config['seeds'])} seeds x {len(config['tuners'])} tuners; "
        f"initial parallelism {config['initial_parallelism']}, at most {config['max_steps']} steps, "
        f"noise {config['noise']}. Took {env['elapsed_s']:.1f} s."
    )
    out += ["", "## All regimes", ""]
    out.append(md_table(AGGREGATE_HEADERS, aggregate_table_rows(result["aggregates"]), numeric=_NUMERIC))
    for regime, aggregates in result["by_regime"].items():
        out += [f"## Regime: {md_cell(regime)}", ""]
        out.append(md_table(AGGREGATE_HEADERS, aggregate_table_rows(aggregates), numeric=_NUMERIC))
    out += ["## Infeasible cases (not averaged in)", ""]
    if result["infeasible"]:
        rows = [
            [c["job"], c["rate_factor"], f"{c['rate_rps']:,.0f}", c["regime"], ", ".join(c["infeasible_operators"]), c["reason"]]
            for c in result["infeasible"]
        ]
        out.append(md_table(["job", "rate factor", "rate rec/s", "regime", "operators", "reason"], rows,
                            numeric=[False, True, True, False, False, False]))
    else:
        out += ["None: the oracle met every target.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# Terminal headers: short, on two lines, so the table fits an 80-column CI log without wrapping numbers.
_RICH_COLUMNS = [
    ("tuner", 0),
    ("runs", 1),
    ("reconfig.\nmean / max", 3),
    ("p / oracle\nmean / max", 4),
    ("final p\nmean", 5),
    ("bp win.\nmean", 6),
    ("target\nmet", 7),
    ("conv-\nerged", 8),
]


def bench_rich_tables(result: dict[str, Any]) -> list[Any]:
    """rich Tables for the terminal: all regimes together, then per regime; infeasible runs in a caption."""
    from rich import box
    from rich.table import Table

    tables = []
    sections = [("all regimes", result["aggregates"])] + [(f"regime {k}", v) for k, v in result["by_regime"].items()]
    for title, aggregates in sections:
        infeasible = sum(a["infeasible_runs"] for a in aggregates.values())
        caption = f"{infeasible} run(s) with an infeasible oracle not averaged in" if infeasible else None
        table = Table(title=f"{result['suite']}: {title}", caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for header, index in _RICH_COLUMNS:
            table.add_column(header, justify="right" if _NUMERIC[index] else "left", no_wrap=True)
        for row in aggregate_table_rows(aggregates):
            table.add_row(*[row[i] for _, i in _RICH_COLUMNS], style="dim" if row[0] == ORACLE_ROW else None)
        tables.append(table)
    if result["infeasible"]:
        table = Table(title="infeasible cases (not averaged in)", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for header in ("job", "rate factor", "regime", "operators", "reason"):
            table.add_column(header)
        for c in result["infeasible"]:
            table.add_row(c["job"], str(c["rate_factor"]), c["regime"], ", ".join(c["infeasible_operators"]), str(c["reason"]))
        tables.append(table)
    return tables
