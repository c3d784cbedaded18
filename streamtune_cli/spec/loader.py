"""Load and validate job specs: YAML -> pydantic models -> graph rules, every problem with file:line:col."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from streamtune_cli.errors import Problem, SpecError
from streamtune_cli.spec.models import JobSpec, OperatorKind, Partitioning, sql_fields
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
    """(data path, message) for every SQL expression polars cannot parse."""
    found = [(i, op, sub, sql) for i, op in enumerate(spec.operators) for sub, sql in sql_fields(op)]
    if not found:
        return []
    import polars as pl  # only when there is SQL to parse: keeps validate fast for cost-only specs

    problems = []
    for index, _op, sub, sql in found:
        try:
            pl.sql_expr(sql)
        except Exception as exc:  # polars raises several exception types for bad SQL
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append((("operators", index) + sub, f"SQL expression {sql!r} does not parse: {reason}"))
    return problems


def _graph_problems(spec: JobSpec) -> list[tuple[tuple[Any, ...], str]]:
    """Rules that need the whole spec: ids, edge ends, DAG shape, partitioning vs parallelism."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    index_of: dict[str, int] = {}
    for i, op in enumerate(spec.operators):
        if op.id in index_of:
            problems.append((("operators", i, "id"), f"duplicate operator id {op.id!r} (first at operators[{index_of[op.id]}])"))
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
                problems.append((("edges", j, end), f"edge {end} unknown operator {op_id!r}"))
                ok = False
        if not ok:
            continue
        if edge.src == edge.dst:
            problems.append((("edges", j), f"edge from {edge.src!r} to itself"))
            continue
        if (edge.src, edge.dst) in seen_edges:
            problems.append((("edges", j), f"duplicate edge {edge.src} -> {edge.dst}"))
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
                    f"forward edge {edge.src} -> {edge.dst} joins unequal parallelism "
                    f"({up.parallelism} vs {down.parallelism}); use rebalance or hash, or equal parallelism",
                )
            )

    cycle = _find_cycle([e for _, e in good_edges])
    if cycle is not None:
        # Point at the cycle's edge that comes last in the file: usually the one just added.
        on_cycle = set(cycle)
        j = max(j for j, e in good_edges if (e.src, e.dst) in on_cycle)
        problems.append((("edges", j), "the graph has a cycle: " + " -> ".join([c[0] for c in cycle] + [cycle[0][0]])))

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
            problems.append((("operators", i, "kind"), f"source {op.id!r} has {n_in} input edge(s)"))
        if op.kind != OperatorKind.source and not n_in:
            problems.append((("operators", i, "kind"), f"{op.kind.value} {op.id!r} has no input edge (only sources may)"))
        if op.kind == OperatorKind.sink and n_out:
            problems.append((("operators", i, "kind"), f"sink {op.id!r} has {n_out} output edge(s)"))
        if op.kind != OperatorKind.sink and not n_out:
            problems.append((("operators", i, "kind"), f"{op.kind.value} {op.id!r} has no output edge (only sinks may)"))
        if op.kind == OperatorKind.join and n_in != 2:
            problems.append((("operators", i, "kind"), f"join {op.id!r} needs exactly 2 inputs, has {n_in}"))
        if op.join is not None and n_in == 2:
            ups = {spec.edges[j].src for j in inputs[op.id]}
            for side in ("left", "right"):
                if getattr(op.join, side) not in ups:
                    problems.append(
                        (("operators", i, "join", side), f"join.{side} {getattr(op.join, side)!r} is not an input of {op.id!r} (inputs: {sorted(ups)})")
                    )
    return problems


def _find_cycle(edges: list[Any]) -> list[tuple[str, str]] | None:
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_edges_from((e.src, e.dst) for e in edges)
    try:
        return [(u, v) for u, v in nx.find_cycle(graph)]
    except nx.NetworkXNoCycle:
        return None


def spec_from_data(doc: PositionedYaml, *, check_sql_expressions: bool = True) -> JobSpec:
    """Validate parsed YAML into a JobSpec, or raise SpecError listing every problem with its position."""
    spec = validate_model(doc, JobSpec, "job spec")
    found = _graph_problems(spec)
    if check_sql_expressions:
        found += check_sql(spec)
    if found:
        problems = [doc.problem(path, message) for path, message in found]
        problems.sort(key=lambda p: (p.location.line or 0, p.location.column or 0))
        raise SpecError(problems)
    return spec


def load_spec(path: str | Path, *, check_sql_expressions: bool = True) -> JobSpec:
    """Load and fully validate a job spec file."""
    return spec_from_data(load_yaml_file(path), check_sql_expressions=check_sql_expressions)


def load_spec_text(text: str, file: str = "<string>", *, check_sql_expressions: bool = True) -> JobSpec:
    return spec_from_data(load_yaml_text(text, file), check_sql_expressions=check_sql_expressions)


def spec_to_data(spec: JobSpec) -> dict[str, Any]:
    """Plain data for a spec: defaults left out so dumped specs read like hand-written ones."""
    return spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def dump_spec(spec: JobSpec) -> str:
    return yaml.safe_dump(spec_to_data(spec), sort_keys=False, default_flow_style=False, allow_unicode=True)


