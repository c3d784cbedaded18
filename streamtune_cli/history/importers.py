"""Importers into a history: a tuning trace (streamtune_cli.executors.base.Trace JSON) becomes one run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from streamtune_cli.errors import SpecError
from streamtune_cli.executors.base import Trace
from streamtune_cli.history.records import RunsBuilder
from streamtune_cli.history.store import HistoryError, HistoryStore
from streamtune_cli.spec.loader import load_spec_text
from streamtune_cli.spec.models import JobSpec

__all__ = ["TRACE_FORMAT_VERSION", "load_trace", "trace_run_id", "trace_spec", "add_trace", "AddedTrace"]

TRACE_FORMAT_VERSION = 1


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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(path, "no such trace file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(path, f"cannot read trace: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryError(f"{path}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise HistoryError(path, "not a tuning trace: expected a JSON object with job, spec, executor, tuner and steps")
    version = data.get("format_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > TRACE_FORMAT_VERSION:
        raise HistoryError(path, f"trace format version {version} is newer than this streamtune reads ({TRACE_FORMAT_VERSION})")
    try:
        trace = Trace.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise HistoryError(path, f"not a valid tuning trace: {where}: {first['msg']}{more}") from None
    if not trace.steps:
        raise HistoryError(path, "trace has no steps: nothing was measured")
    return trace


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
    unknown = sorted({op for obs in windows for op in obs.operators} - {op.id for op in spec.operators})
    if unknown:
        raise HistoryError(path, f"observations name operators the job spec does not have: {', '.join(unknown[:5])}")
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
