"""Importers into a history: a tuning trace (streamtune_cli.executors.base.Trace JSON) becomes one run."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from streamtune_cli.errors import Location, Problem, SpecError
from streamtune_cli.executors.base import Trace
from streamtune_cli.history.records import RunsBuilder
from streamtune_cli.history.store import HistoryError, HistoryStore, read_json
from streamtune_cli.io import locate_json_path
from streamtune_cli.spec.loader import load_spec_text
from streamtune_cli.spec.models import MAX_PARALLELISM_BOUND, JobSpec

__all__ = [
    "TRACE_FORMAT_VERSION",
    "load_trace",
    "trace_run_id",
    "trace_spec",
    "observation_problems",
    "check_observations",
    "check_operators_known",
    "add_trace",
    "AddedTrace",
]

TRACE_FORMAT_VERSION = 1
# The `schema` a trace file may carry (the version is format_version's).
TRACE_SCHEMA_PREFIX = "streamtune.trace/"


@dataclass(frozen=True)
class AddedTrace:
    run_id: str
    job: str
    windows: int
    rows: int
    added: bool
    part: Path | None


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace file; any problem raises an error that names the file (and line for bad JSON)."""
    path = Path(path)
    data = read_json(path, "tuning trace")
    if not isinstance(data, dict):
        raise HistoryError(path, "not a tuning trace: expected a JSON object with job, spec, executor, tuner and steps")
    schema = data.get("schema")
    if schema is not None:
        # trace.json may name its format (streamtune.trace/N, as every JSON output should); the trace model
        # itself has no such field. Any other schema is another kind of file (a summary.json, a report).
        if not isinstance(schema, str) or not schema.startswith(TRACE_SCHEMA_PREFIX):
            shown = json.dumps(schema)[:60]
            raise HistoryError.from_problems(
                [Problem(locate_json_path(path, ("schema",)), f"not a tuning trace: its schema is {shown}, not {TRACE_SCHEMA_PREFIX}N (tune --report writes trace.json beside summary.json)")]
            )
        data = {key: value for key, value in data.items() if key != "schema"}
    version = data.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        shown = json.dumps(version)[:40]
        raise HistoryError.from_problems(
            [Problem(locate_json_path(path, ("format_version",)), f"format_version must be a whole number (this streamtune reads up to {TRACE_FORMAT_VERSION}), not {shown}")]
        )
    if version > TRACE_FORMAT_VERSION:
        raise HistoryError.from_problems(
            [Problem(locate_json_path(path, ("format_version",)), f"trace format version {version} is newer than this streamtune reads ({TRACE_FORMAT_VERSION})")]
        )
    try:
        trace = Trace.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        located = locate_json_path(path, tuple(first["loc"]))
        raise HistoryError.from_problems([Problem(located, f"not a valid tuning trace: {where}: {first['msg']}{more}")]) from None
    if not trace.steps:
        raise HistoryError(path, "trace has no steps: nothing was measured")
    return trace


# Fractions of wall time may overshoot [0, 1] by float rounding in a measuring executor, not by more
# (the same slack as executors.base.FRACTION_SLACK, repeated so this check stands on its own).
_FRACTION_SLACK = 1e-6
_WINDOW_AMOUNTS = ("t_s", "target_rate_rps", "achieved_rate_rps", "lag_records")
_OPERATOR_RATES = ("input_rate_rps", "output_rate_rps", "true_processing_rate_rps", "true_output_rate_rps")
_OPERATOR_FRACTIONS = ("busy", "busy_max", "idle", "backpressured", "backpressured_max")
_MAX_PROBLEMS = 20


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bad_amount(value: Any) -> str | None:
    """Why a measured amount (a rate, a count, seconds) cannot be stored, or None when it can."""
    if not _is_number(value):
        return f"{value!r} is not a number"
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if value < 0:
        return f"{value:g} is negative"
    return None


def _bad_fraction(value: Any) -> str | None:
    """Why a fraction of wall time cannot be stored, or None when it can."""
    if not _is_number(value):
        return f"{value!r} is not a number"
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if value < -_FRACTION_SLACK:
        return f"{value:g} is negative"
    if value > 1 + _FRACTION_SLACK:
        return f"{value:g} is above 1"
    return None


def observation_problems(trace: Trace, spec: JobSpec, path: str | Path) -> list[Problem]:
    """Every measured value of the trace a history must not hold, each naming its step and operator.

    Checked here rather than trusted to the trace model, so a hand-edited or foreign trace cannot put NaN
    rates, impossible fractions or parallelism Parquet cannot store into a history (queries would then
    average NaN or the import would crash half-way).
    """
    return [Problem(Location(str(path)), message) for _, message in _observation_issues(trace, spec)]


def _observation_issues(trace: Trace, spec: JobSpec) -> list[tuple[tuple[Any, ...], str]]:
    """observation_problems as (JSON path of the offending value, message), so the caller can locate some."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    spec_ops = [op.id for op in spec.operators]

    def add(step_index: int, step_no: int, operator: str | None, message: str, field: str | None = None) -> None:
        at = f"steps[{step_index}] (step {step_no})" + (f", operator {operator!r}" if operator is not None else "")
        json_path: tuple[Any, ...] = ("steps", step_index, "observation")
        if operator is not None:
            json_path += ("operators", operator)
        if field is not None:
            json_path += (field,)
        problems.append((json_path, f"{at}: {message}"))

    for i, step in enumerate(trace.steps):
        obs = step.observation
        for name in _WINDOW_AMOUNTS:
            why = _bad_amount(getattr(obs, name))
            if why:
                add(i, step.step, None, f"{name} {why}", name)
        why = _bad_amount(obs.window_s)
        if why or obs.window_s == 0:
            add(i, step.step, None, f"window_s {why or '0 is not a window length'}", "window_s")
        if obs.latency_ms is not None:
            why = _bad_amount(obs.latency_ms)
            if why:
                add(i, step.step, None, f"latency_ms {why}", "latency_ms")
        if not obs.operators:
            add(i, step.step, None, "the observation has no operators (empty operators map)")
            continue
        missing = [op for op in spec_ops if op not in obs.operators]
        if missing:
            add(i, step.step, None, f"the observation lacks spec operator(s) {', '.join(map(repr, missing[:5]))}")
        for key, metrics in obs.operators.items():
            if metrics.operator != key:
                add(i, step.step, key, f"its metrics say operator {metrics.operator!r}, not {key!r}", "operator")
            p = metrics.parallelism
            if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= MAX_PARALLELISM_BOUND:
                shown = str(p) if len(str(p)) <= 20 else f"{str(p)[:8]}... ({len(str(p))} digits)"
                add(i, step.step, key, f"parallelism {shown} is outside 1..{MAX_PARALLELISM_BOUND}", "parallelism")
            for name in _OPERATOR_RATES:
                why = _bad_amount(getattr(metrics, name))
                if why:
                    add(i, step.step, key, f"{name} {why}", name)
            for name in _OPERATOR_FRACTIONS:
                why = _bad_fraction(getattr(metrics, name))
                if why:
                    add(i, step.step, key, f"{name} {why} (a fraction of wall time must be in [0, 1])", name)
    return problems


def check_observations(trace: Trace, spec: JobSpec, path: str | Path) -> None:
    """Raise HistoryError listing (up to 20 of) the trace's impossible measurements, each at its file:line:col;
    see observation_problems."""
    issues = _observation_issues(trace, spec)
    problems = [Problem(locate_json_path(path, json_path), message) for json_path, message in issues[:_MAX_PROBLEMS]]
    if len(issues) > _MAX_PROBLEMS:
        rest = len(issues) - _MAX_PROBLEMS
        problems.append(Problem(Location(str(path)), f"... and {rest} more problem(s)"))
    if problems:
        raise HistoryError.from_problems(problems)


def check_operators_known(trace: Trace, spec: JobSpec, path: str | Path) -> None:
    """Every operator id a step names (observation, deployed and decided parallelism, reasons) is one of the
    spec's; the first stranger is an error at its file:line:col, with every unknown id listed."""
    known = {op.id for op in spec.operators}
    unknown: list[str] = []
    first: tuple[Any, ...] | None = None
    for i, step in enumerate(trace.steps):
        places: list[tuple[tuple[Any, ...], Any]] = [
            (("steps", i, "observation", "operators"), step.observation.operators),
            (("steps", i, "parallelism"), step.parallelism),
        ]
        if step.decision is not None:
            places += [(("steps", i, "decision", "parallelism"), step.decision.parallelism), (("steps", i, "decision", "reasons"), step.decision.reasons)]
        for json_path, mapping in places:
            for op in mapping:
                if op not in known:
                    if first is None:
                        first = json_path + (op,)
                    if op not in unknown:
                        unknown.append(op)
    if first is not None:
        shown = ", ".join(repr(op[:40]) for op in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        where = ".".join(map(str, first[:-1]))
        raise HistoryError.from_problems(
            [Problem(locate_json_path(path, first), f"{where} names operators the job spec does not have: {shown}")]
        )


def trace_spec(trace: Trace, path: str | Path) -> JobSpec:
    """The job spec embedded in a trace, fully validated (DAG shape, edges) like a spec file."""
    try:
        return load_spec_text(json.dumps(trace.spec, indent=1), file=f"{path}#spec", check_sql_expressions=False)
    except SpecError as exc:
        details = "; ".join(p.message for p in exc.problems[:3])
        raise HistoryError(path, f"the trace's embedded job spec is invalid: {details}") from None


def trace_run_id(trace: Trace) -> str:
    """A content hash: the same trace always gets the same run id, so adding it twice is detected."""
    canonical = json.dumps(trace.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "trace-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def add_trace(path: str | Path, history: str | Path) -> AddedTrace:
    """Append one trace file as a run of the history at `history` (created if missing)."""
    trace = load_trace(path)
    spec = trace_spec(trace, path)
    run_id = trace_run_id(trace)
    windows = [step.observation for step in trace.steps]
    check_operators_known(trace, spec, path)
    check_observations(trace, spec, path)
    store = HistoryStore.create(history)
    if run_id in store.run_ids():
        return AddedTrace(run_id, trace.job, len(windows), 0, False, None)
    family = trace.meta.get("family")
    builder = RunsBuilder()
    builder.add_run(
        run_id,
        spec,
        windows,
        origin="trace",
        executor=trace.executor,
        family=family if isinstance(family, str) else None,
        tuner=trace.tuner,
        seed=trace.seed,
    )
    runs, rows = builder.tables()
    part = store.append(runs, rows)
    return AddedTrace(run_id, trace.job, len(windows), rows.num_rows, True, part)
