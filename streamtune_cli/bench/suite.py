"""Bench suite files: the schema (declared once, as data), loading with file:line:col errors, and the
rewrites a suite applies to each job (rate level, scaling regime)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from streamtune_cli.errors import Problem, SpecError, UsageError
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
    "DEFAULT_DRAIN_BOUND_S",
]

# A run converges only if the lag left at its end drains within this bound: Flink's autoscaler sizes a
# rescaled job to process its backlog within job.autoscaler.catch-up.duration, 30 min by default.
DEFAULT_DRAIN_BOUND_S = 1800.0
# Options the bench sets itself for every run, so a suite may not: the seed comes from `seeds`, the spec
# folder from each job's path, the rate from the rate factor or level.
_BENCH_SET_EXECUTOR_OPTIONS = ("seed", "spec_dir", "rate_rps")


class _Strict(BaseModel):
    # inf and NaN are never a meaningful rate factor, noise or window length.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Named regimes a suite can list by name. "skewed" keeps sub-linear scaling and adds Zipf(0.8) key skew on
# every hash-partitioned input: the case where per-instance rates mislead DS2-style linear extrapolation.
# "declared" keeps what each job declares (its scaling and its key skew), so a job's own skew is tested.
REGIME_PRESETS: dict[str, dict[str, Any]] = {
    "linear": {"name": "linear", "scaling": "linear", "skew": "none"},
    "sublinear": {"name": "sublinear", "scaling": "spec", "skew": "none"},
    "skewed": {"name": "skewed", "scaling": "spec", "skew": {"zipf_s": 0.8, "keys": 10_000}},
    "declared": {"name": "declared", "scaling": "spec", "skew": "spec"},
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


# A rate factor multiplies a job's rate: beyond a million-fold nothing physical is left to simulate, and the
# product must stay a finite float.
_RateFactor = Annotated[float, Field(gt=0, le=1e6)]


class TunerVariant(_Strict):
    """A named tuner configuration (for ablations): `tuners` may list its name like a tuner's."""

    tuner: Annotated[str, Field(min_length=1)]
    options: dict[str, Any] = Field(default_factory=dict)


class BenchSuite(_Strict):
    """A benchmark suite file (configs/bench/*.yaml); job paths are relative to the suite file.

    protocol `cold`: every (job, rate factor, regime, seed) is one tuning from `initial_parallelism` with a
    fresh tuner. protocol `continuous` (ContTune's, PVLDB 2023): per (job, regime, seed) the rate moves
    through `rate_levels` in order, and each level is a tuning that starts from the previous level's
    deployment with the same tuner object (what it learned carries over) and the same running executor.
    """

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    jobs: list[str] = Field(min_length=1)
    protocol: Literal["cold", "continuous"] = "cold"
    rate_factors: list[_RateFactor] = Field(default=[1.0], min_length=1)
    rate_levels: list[_RateFactor] | None = Field(
        default=None, min_length=2, description="continuous protocol: the rate factors in the order they come"
    )
    regimes: list[Regime] = Field(default_factory=lambda: [Regime.model_validate(r) for r in ("linear", "sublinear", "skewed")])
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default=[0], min_length=1)
    tuners: list[str] = Field(min_length=1)
    tuner_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    variants: dict[str, TunerVariant] = Field(
        default_factory=dict, description="named tuner configurations, listed in `tuners` by name (ablations)"
    )
    initial_parallelism: PositiveInt | Literal["spec"] = Field(
        default=1, description="every operator starts here (an int), or at the spec's own parallelism"
    )
    schedule: Literal["constant", "spec"] = Field(
        default="constant", description="constant: a flat target at rate_factor x the job's rate; spec: keep its schedule"
    )
    max_steps: PositiveInt = 10
    max_parallelism: Annotated[int, Field(ge=1, le=MAX_PARALLELISM_BOUND)] | None = None
    executor: Annotated[str, Field(min_length=1)] = "sim"
    executor_options: dict[str, Any] = Field(
        default_factory=dict, description="the executor's own options (sim: noise, window_s, warmup_s)"
    )
    drain_bound_s: PositiveFloat = DEFAULT_DRAIN_BOUND_S

    @model_validator(mode="after")
    def _consistent(self) -> "BenchSuite":
        for what, values in (
            ("regime name", [r.name for r in self.regimes]),
            ("tuner", self.tuners),
            ("seed", self.seeds),
            ("rate factor", self.rate_factors),
        ):
            duplicates = sorted({str(v) for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")
        if self.protocol == "continuous":
            if self.rate_levels is None:
                raise ValueError("protocol continuous needs rate_levels (the rate factors in order)")
            if "rate_factors" in self.model_fields_set:
                raise ValueError("protocol continuous takes rate_levels, not rate_factors")
        elif self.rate_levels is not None:
            raise ValueError("rate_levels only apply to protocol continuous (cold takes rate_factors)")
        return self

    def tuner_spec(self, name: str) -> tuple[str, dict[str, Any]]:
        """(registered tuner, options) of a name in `tuners`: a variant, or a tuner with its tuner_options."""
        if name in self.variants:
            return self.variants[name].tuner, dict(self.variants[name].options)
        return name, dict(self.tuner_options.get(name, {}))

    @property
    def rates(self) -> list[float]:
        """The rate factors of the cases (cold) or the level sequence (continuous)."""
        return list(self.rate_levels) if self.protocol == "continuous" and self.rate_levels else list(self.rate_factors)


# Tuner options that name a path: relative paths are relative to the suite file, like its jobs.
_PATH_OPTIONS = ("models",)


def _resolve_paths(options: dict[str, Any], base: Path) -> dict[str, Any]:
    resolved = dict(options)
    for key in _PATH_OPTIONS:
        value = resolved.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            resolved[key] = os.path.normpath(base / value)
    return resolved


@dataclass(frozen=True)
class LoadedSuite:
    suite: BenchSuite
    path: Path
    jobs: list[tuple[Path, JobSpec]] = field(default_factory=list)

    def tuner_spec(self, name: str) -> tuple[str, dict[str, Any]]:
        """(registered tuner, options) for a name in `tuners`, path options resolved against the suite file."""
        base, options = self.suite.tuner_spec(name)
        return base, _resolve_paths(options, self.path.parent)


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
    for name, variant in suite.variants.items():
        if name in known:
            problems.append(doc.problem(("variants", name), f"variant {name!r} has the name of a tuner; pick another"))
        elif variant.tuner not in known:
            problems.append(doc.problem(("variants", name, "tuner"), f"unknown tuner {variant.tuner!r} (known: {', '.join(known)})"))
        else:
            options = _resolve_paths(variant.options, path.parent)
            problems += _tuner_option_problems(doc, variant.tuner, options, ("variants", name, "options"))
    for i, name in enumerate(suite.tuners):
        if name not in known and name not in suite.variants:
            choices = ", ".join([*known, *suite.variants])
            problems.append(doc.problem(("tuners", i), f"unknown tuner {name!r} (known: {choices})"))
    for name, options in suite.tuner_options.items():
        if name in suite.variants:
            problems.append(
                doc.problem(("tuner_options", name), f"{name!r} is a variant: put its options in variants.{name}.options")
            )
        elif name not in suite.tuners:
            problems.append(doc.problem(("tuner_options", name), f"options for {name!r}, which is not in tuners"))
        elif name in known:
            problems += _tuner_option_problems(doc, name, _resolve_paths(options, path.parent), ("tuner_options", name))
    problems += _executor_problems(doc, suite)
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
    jobs = [(p, load_spec(p)) for p in job_paths]
    return LoadedSuite(suite=suite, path=path, jobs=jobs)


def _tuner_option_problems(doc: Any, name: str, options: dict[str, Any], where: tuple[Any, ...]) -> list[Problem]:
    """Build the tuner with the suite's options now, so a bad option fails validation, not a run."""
    from streamtune_cli.tuning.tuners import TunerOptionError, make_tuner

    try:
        make_tuner(name, **options)
    except TunerOptionError as exc:
        path = where if exc.option is None else (*where, exc.option)
        return [doc.problem(path, str(exc))]
    return []


def _executor_problems(doc: Any, suite: BenchSuite) -> list[Problem]:
    """The executor and its options, validated as data (nothing is started)."""
    from streamtune_cli.executors.registry import EXECUTOR_NAMES, ExecutorOptionError, executor_options

    if suite.executor not in EXECUTOR_NAMES:
        return [doc.problem(("executor",), f"unknown executor {suite.executor!r} (known: {', '.join(EXECUTOR_NAMES)})")]
    problems = [
        doc.problem(("executor_options", name), f"{name!r} is set by the bench for every run; remove it from the suite")
        for name in _BENCH_SET_EXECUTOR_OPTIONS
        if name in suite.executor_options
    ]
    if problems:
        return problems
    try:
        executor_options(suite.executor, dict(suite.executor_options))
    except ExecutorOptionError as exc:
        path = ("executor_options",) if exc.option is None else ("executor_options", exc.option)
        return [doc.problem(path, str(exc))]
    return []


def parse_tuner_list(text: str, variants: tuple[str, ...] = ()) -> list[str]:
    """`ds2,conttune` from the command line, checked against the known tuners and the suite's variants."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--tuners needs at least one tuner name")
    known = (*_tuner_names(), *variants)
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
    """Rows the suite produces: one per tuning (a cold case, or one rate level of a continuous sequence)."""
    suite = loaded.suite
    return len(loaded.jobs) * len(suite.rates) * len(suite.regimes) * len(suite.seeds) * len(tuners or suite.tuners)


