"""Load and validate job specs: YAML -> pydantic models -> graph rules, every problem with file:line:col."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from streamtune_cli.errors import Problem, SpecError, excerpt
from streamtune_cli.spec.models import (
    MAX_OPERATOR_INPUT_RPS,
    JobSpec,
    OperatorKind,
    Partitioning,
    TraceSchedule,
    sql_fields,
)
from streamtune_cli.spec.yaml_positions import PositionedYaml, load_yaml_file, load_yaml_text

__all__ = ["load_spec", "load_spec_text", "spec_from_data", "dump_spec", "spec_to_data", "check_sql", "validate_model"]


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Map a pydantic error location onto the YAML data, skipping union tags that are not keys."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
    return tuple(path)


_MAX_MESSAGE = 300
_QUOTE_INPUT = {
    "less_than_equal", "less_than", "greater_than_equal", "greater_than", "finite_number", "float_type",
    "float_parsing", "int_type", "int_parsing",
}


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    field = error["loc"][-1] if error["loc"] else None
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind == "missing":
        return f"missing required field {field!r}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    ctx = error.get("ctx") or {}
    if kind == "union_tag_invalid" and "tag" in ctx:
        # pydantic quotes the whole tag: a 100 KB `kind` would be repeated whole.
        return f"{field}: {ctx.get('discriminator', 'kind')} {excerpt(ctx['tag'])} is not one of {ctx.get('expected_tags', '')}"
    if kind == "too_long" and "max_length" in ctx:
        got = ctx.get("actual_length")
        got_text = f", got {got:,}" if isinstance(got, int) else ""
        return f"{field}: at most {ctx['max_length']:,} entries (docs/spec.md, size limits){got_text}"
    if kind in _QUOTE_INPUT:
        # Out-of-range numbers: say which value, cut short (a 300-digit integer is not repeated whole).
        message = f"{message} (got {excerpt(error.get('input'))})"
    if len(message) > _MAX_MESSAGE:  # any other library message that quotes its input: cut, never whole
        message = message[:_MAX_MESSAGE] + "..."
    if field is not None and isinstance(field, str) and kind not in ("value_error",):
        return f"{field}: {message}"
    return message


def _validation_problems(doc: PositionedYaml, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _data_path(doc.data, loc)
        problems.append(doc.problem(path, _message(error)))
    return problems


ModelT = TypeVar("ModelT", bound=BaseModel)


def field_alias(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def validate_model(doc: PositionedYaml, model: type[ModelT], what: str) -> ModelT:
    """Validate a parsed YAML document into `model`; every problem becomes a SpecError entry with file:line:col.

    `what` names the document ("job spec") in the error for documents that are not mappings.
    """
    if not isinstance(doc.data, dict):
        required = [name for name, field in model.model_fields.items() if field.is_required()]
        fields = f" with {', '.join(field_alias(model, name) for name in required)}" if required else ""
        raise SpecError([doc.problem((), f"a {what} must be a mapping{fields}")])
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(_validation_problems(doc, exc)) from None


def check_sql(spec: JobSpec) -> list[tuple[tuple[Any, ...], str]]:
    """(data path, message) for every SQL expression that is not valid Flink SQL for its place (spec/sql.py:
    one checker for every command)."""
    from streamtune_cli.spec.sql import check_spec_sql

    return check_spec_sql(spec)


def _short(op_id: str) -> str:
    return op_id if len(op_id) <= 60 else excerpt(op_id)


def _cycle_text(ids: list[str]) -> str:
    """`a -> b -> c -> a`, with long cycles elided in the middle: the edge it points at is what to fix."""
    shown = [_short(i) for i in ids]
    if len(shown) > 8:
        shown = shown[:4] + [f"... ({len(ids) - 6} more)"] + shown[-2:]
    return " -> ".join(shown + [_short(ids[0])])


def _graph_problems(spec: JobSpec) -> list[tuple[tuple[Any, ...], str]]:
    """Rules that need the whole spec: ids, edge ends, DAG shape, partitioning vs parallelism."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    index_of: dict[str, int] = {}
    for i, op in enumerate(spec.operators):
        if op.id in index_of:
            problems.append((("operators", i, "id"), f"duplicate operator id {excerpt(op.id)} (first at operators[{index_of[op.id]}])"))
        else:
            index_of[op.id] = i

    inputs: dict[str, list[int]] = {op.id: [] for op in spec.operators}
    outputs: dict[str, list[int]] = {op.id: [] for op in spec.operators}
    seen_edges: dict[tuple[str, str], int] = {}
    good_edges = []
    for j, edge in enumerate(spec.edges):
        ok = True
        for end, op_id in (("from", edge.src), ("to", edge.dst)):
            if op_id not in index_of:
                problems.append((("edges", j, end), f"edge {end} unknown operator {excerpt(op_id)}"))
                ok = False
        if not ok:
            continue
        if edge.src == edge.dst:
            problems.append((("edges", j), f"edge from {excerpt(edge.src)} to itself"))
            continue
        if (edge.src, edge.dst) in seen_edges:
            problems.append((("edges", j), f"duplicate edge {excerpt(edge.src)} -> {excerpt(edge.dst)}"))
            continue
        seen_edges[(edge.src, edge.dst)] = j
        inputs[edge.dst].append(j)
        outputs[edge.src].append(j)
        good_edges.append((j, edge))
        up, down = spec.operators[index_of[edge.src]], spec.operators[index_of[edge.dst]]
        if edge.partitioning == Partitioning.forward and up.parallelism != down.parallelism:
            problems.append(
                (
                    ("edges", j, "partitioning"),
                    f"forward edge {_short(edge.src)} -> {_short(edge.dst)} joins unequal parallelism "
                    f"({up.parallelism} vs {down.parallelism}); use rebalance or hash, or equal parallelism",
                )
            )

    cycle = _find_cycle([e for _, e in good_edges])
    if cycle is not None:
        # Point at the cycle's edge that comes last in the file: usually the one just added.
        on_cycle = set(cycle)
        j = max(j for j, e in good_edges if (e.src, e.dst) in on_cycle)
        problems.append((("edges", j), "the graph has a cycle: " + _cycle_text([c[0] for c in cycle])))

    sources = [op for op in spec.operators if op.kind == OperatorKind.source]
    sinks = [op for op in spec.operators if op.kind == OperatorKind.sink]
    if not sources:
        problems.append((("operators",), "the job has no source operator"))
    if not sinks:
        problems.append((("operators",), "the job has no sink operator"))
    for i, op in enumerate(spec.operators):
        if index_of[op.id] != i:  # a duplicate id: already reported above
            continue
        n_in, n_out = len(inputs[op.id]), len(outputs[op.id])
        if op.kind == OperatorKind.source and n_in:
            problems.append((("operators", i, "kind"), f"source {excerpt(op.id)} has {n_in} input edge(s)"))
        if op.kind != OperatorKind.source and not n_in:
            problems.append((("operators", i, "kind"), f"{op.kind.value} {excerpt(op.id)} has no input edge (only sources may)"))
        if op.kind == OperatorKind.sink and n_out:
            problems.append((("operators", i, "kind"), f"sink {excerpt(op.id)} has {n_out} output edge(s)"))
        if op.kind != OperatorKind.sink and not n_out:
            problems.append((("operators", i, "kind"), f"{op.kind.value} {excerpt(op.id)} has no output edge (only sinks may)"))
        if op.kind == OperatorKind.join and n_in != 2:
            problems.append((("operators", i, "kind"), f"join {excerpt(op.id)} needs exactly 2 inputs, has {n_in}"))
        if op.join is not None and n_in == 2:
            ups = {spec.edges[j].src for j in inputs[op.id]}
            for side in ("left", "right"):
                if getattr(op.join, side) not in ups:
                    problems.append(
                        (
                            ("operators", i, "join", side),
                            f"join.{side} {excerpt(getattr(op.join, side))} is not an input of {excerpt(op.id)} "
                            f"(inputs: {', '.join(excerpt(u) for u in sorted(ups))})",
                        )
                    )
    return problems


def _find_cycle(edges: list[Any]) -> list[tuple[str, str]] | None:
    """One cycle of the graph, or None. Kahn's algorithm proves most graphs acyclic in one linear pass;
    only what it cannot order (the cycles and what hangs off them) goes to networkx to name a cycle."""
    outs: dict[str, list[str]] = {}
    waiting: dict[str, int] = {}
    for e in edges:
        outs.setdefault(e.src, []).append(e.dst)
        waiting.setdefault(e.src, 0)
        waiting[e.dst] = waiting.get(e.dst, 0) + 1
    ready = [node for node, n in waiting.items() if n == 0]
    while ready:
        node = ready.pop()
        for down in outs.get(node, ()):
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    stuck = {node for node, n in waiting.items() if n > 0}
    if not stuck:
        return None
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_edges_from((e.src, e.dst) for e in edges if e.src in stuck and e.dst in stuck)
    return [(u, v) for u, v in nx.find_cycle(graph)]


def _trace_problems(spec: JobSpec, spec_dir: Path | None) -> list[tuple[tuple[Any, ...], str]]:
    """A trace schedule's file must be one every command may read (spec.rate_trace.trace_path)."""
    schedule = spec.workload.schedule
    if not isinstance(schedule, TraceSchedule) or spec_dir is None:
        return []
    from streamtune_cli.spec.rate_trace import trace_path

    where = ("workload", "schedule", "file")
    try:
        path = trace_path(schedule.file, spec_dir)
    except ValueError as exc:
        return [(where, f"{exc} (file {excerpt(schedule.file)})")]
    # Whether it is there is a problem of the spec (its position); what is in it, of the file (its lines).
    try:
        info = path.stat()
    except OSError:
        return [(where, f"rate trace {excerpt(schedule.file)} not found in the spec's folder")]
    if not stat.S_ISREG(info.st_mode):
        return [(where, f"rate trace {excerpt(schedule.file)} is not a regular file")]
    return []


def _schedule_peak(spec: JobSpec, spec_dir: Path | None) -> float | None:
    """The schedule's peak factor; a trace file is read (and every problem in it raised) when spec_dir says
    where it is, and None when it cannot be known (a spec given as text)."""
    schedule = spec.workload.schedule
    if not isinstance(schedule, TraceSchedule):
        return schedule.peak_factor()
    if spec_dir is None:
        return None
    from streamtune_cli.spec.rate_trace import load_rate_trace, trace_path

    return load_rate_trace(trace_path(schedule.file, spec_dir)).peak_factor


def _demand_problems(spec: JobSpec, peak_factor: float) -> list[tuple[tuple[Any, ...], str]]:
    """At the peak target rate, no operator may have to process more than MAX_OPERATOR_INPUT_RPS records/s.

    Each number is bounded on its own, but selectivities, broadcast edges (every record to each of up to
    max_parallelism instances) and converging paths multiply: a chain of flat_maps or of diamonds can reach
    any magnitude, and with it overflow in the sim, the oracle and the tuners. The graph must be a DAG
    with known edge ends (checked before)."""
    ops = {op.id: op for op in spec.operators}
    index = {op.id: i for i, op in enumerate(spec.operators)}
    peak_rps = spec.workload.rate_rps * peak_factor
    sources = [op for op in spec.operators if op.kind == OperatorKind.source]
    shares = {op.id: op.rate_share or 1.0 for op in sources}
    total_share = sum(shares.values())
    demand = {op.id: 0.0 for op in spec.operators}
    for op_id, share in shares.items():
        demand[op_id] = peak_rps * share / total_share
    downstream: dict[str, list[Any]] = {op.id: [] for op in spec.operators}
    waiting = {op.id: 0 for op in spec.operators}
    for edge in spec.edges:
        downstream[edge.src].append(edge)
        waiting[edge.dst] += 1
    ready = [op.id for op in spec.operators if waiting[op.id] == 0]
    ceiling = 1e290  # keeps every sum finite (x selectivity x fan-out stays below 1e308), the value reported true
    while ready:
        op_id = ready.pop()
        if demand[op_id] > MAX_OPERATOR_INPUT_RPS:
            return [
                (
                    ("operators", index[op_id]),
                    f"at the peak target rate ({peak_rps:.3g} rec/s) operator {_short(op_id)} would have to process "
                    f"{demand[op_id]:.3g} records/s, more than {MAX_OPERATOR_INPUT_RPS:.0e}: selectivities, broadcast "
                    "edges and converging paths multiply the rate along the DAG; lower them or rate_rps",
                )
            ]
        out = 0.0 if ops[op_id].kind == OperatorKind.sink else demand[op_id] * ops[op_id].selectivity
        for edge in downstream[op_id]:
            fan = ops[edge.dst].max_parallelism if edge.partitioning == Partitioning.broadcast else 1
            demand[edge.dst] = min(ceiling, demand[edge.dst] + out * fan)
            waiting[edge.dst] -= 1
            if waiting[edge.dst] == 0:
                ready.append(edge.dst)
    return []


def spec_from_data(
    doc: PositionedYaml, *, check_sql_expressions: bool = True, spec_dir: str | Path | None = None
) -> JobSpec:
    """Validate parsed YAML into a JobSpec, or raise SpecError listing every problem with its position.

    This is the one definition of a valid spec that every command shares: the models' bounds, the graph
    rules, the trace schedule's file (read from `spec_dir`, by default the folder the document was read
    from; not read for a spec given as text) and the demand bound at the schedule's peak.
    """
    spec = validate_model(doc, JobSpec, "job spec")
    folder = Path(spec_dir) if spec_dir is not None else doc.source_dir
    found = _graph_problems(spec)
    if check_sql_expressions:
        found += check_sql(spec)
    found += _trace_problems(spec, folder)
    if not found:
        peak = _schedule_peak(spec, folder)  # a broken trace file raises here, naming its own file and line
        found = _demand_problems(spec, 1.0 if peak is None else peak)
    if found:
        problems = [doc.problem(path, message) for path, message in found]
        problems.sort(key=lambda p: (p.location.line or 0, p.location.column or 0))
        raise SpecError(problems)
    return spec


def load_spec(path: str | Path, *, check_sql_expressions: bool = True) -> JobSpec:
    """Load and fully validate a job spec file (its trace schedule's file included)."""
    return spec_from_data(load_yaml_file(path), check_sql_expressions=check_sql_expressions)


def load_spec_text(
    text: str, file: str = "<string>", *, check_sql_expressions: bool = True, spec_dir: str | Path | None = None
) -> JobSpec:
    """Validate a spec given as text; a trace schedule's file is checked only when spec_dir says where it is."""
    return spec_from_data(load_yaml_text(text, file), check_sql_expressions=check_sql_expressions, spec_dir=spec_dir)


def spec_to_data(spec: JobSpec) -> dict[str, Any]:
    """Plain data for a spec: defaults left out so dumped specs read like hand-written ones."""
    return spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def dump_spec(spec: JobSpec) -> str:
    return yaml.safe_dump(spec_to_data(spec), sort_keys=False, default_flow_style=False, allow_unicode=True)


