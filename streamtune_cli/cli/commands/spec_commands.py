"""`streamtune validate` and `streamtune show`: check job specs and display their DAGs."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, List

import typer

ORDER = 10


class ShowFormat(str, Enum):
    text = "text"
    mermaid = "mermaid"
    json = "json"


def config_kind(data: object) -> str:
    """Which kind of streamtune file a parsed YAML document is, from its top-level keys."""
    if isinstance(data, dict):
        if "rules" in data and "operators" not in data:
            return "gate rules"
        if "jobs" in data and "operators" not in data:
            return "bench suite"
    return "job spec"


def _check_rate_trace(spec, doc, path: Path) -> None:  # noqa: ANN001
    """A trace schedule's CSV must exist and parse, as every executor will read it."""
    schedule = spec.workload.schedule
    if schedule.kind != "trace":
        return
    from streamtune_cli.errors import SpecError
    from streamtune_cli.executors.schedules import load_rate_trace

    trace = Path(schedule.file)
    if not trace.is_absolute():
        trace = Path(path).parent / trace
    if not trace.is_file():
        raise SpecError([doc.problem(("workload", "schedule", "file"), f"rate trace {str(trace)!r} not found")])
    load_rate_trace(trace)  # its own errors name the CSV's file and line


def validate(
    files: List[str] = typer.Argument(..., help="YAML files: job specs, bench suites or gate rules (globs such as 'configs/**/*.yaml' are expanded)."),
    no_sql: bool = typer.Option(False, "--no-sql", help="Skip parsing SQL expressions (faster; no polars import)."),
) -> None:
    """Check job specs (and bench suites, gate rules); summary table; exit 2 at the first invalid file."""
    from rich.table import Table

    from streamtune_cli.cli.common import console, expand_paths
    from streamtune_cli.errors import SpecError
    from streamtune_cli.spec import JobGraph
    from streamtune_cli.spec.loader import spec_from_data
    from streamtune_cli.spec.yaml_positions import load_yaml_file

    table = Table(title="streamtune files", show_lines=False)
    for column in ("file", "kind", "name", "contents", "status"):
        table.add_column(column, overflow="fold")
    for path in expand_paths(files):
        try:
            doc = load_yaml_file(path)
            kind = config_kind(doc.data)
            if kind == "gate rules":
                from streamtune_cli.gate_rules import rules_from_doc

                rules = rules_from_doc(doc)
                row = [rules.rules.name, f"{len(rules.rules.rules)} rules"]
            elif kind == "bench suite":
                from streamtune_cli.bench import suite_from_doc

                suite = suite_from_doc(doc, path)
                row = [suite.suite.name, f"{len(suite.jobs)} jobs, {len(suite.suite.tuners)} tuners"]
            else:
                spec = spec_from_data(doc, check_sql_expressions=not no_sql)
                _check_rate_trace(spec, doc, path)
                graph = JobGraph(spec)
                row = [
                    spec.name,
                    f"{len(spec.operators)} operators, {len(spec.edges)} edges, "
                    f"{len(graph.sources)} source(s), {len(graph.sinks)} sink(s)",
                ]
        except SpecError:
            if table.row_count:
                console.print(table)
            raise
        table.add_row(str(path), kind, *row, "[green]valid[/green]")
    console.print(table)


def show(
    file: Path = typer.Argument(..., help="Job spec YAML file."),
    fmt: ShowFormat = typer.Option(ShowFormat.text, "--format", "-f", help="text (tree), mermaid (flowchart) or json."),
) -> None:
    """Show a job's DAG as a tree, a Mermaid flowchart (renders on GitHub) or JSON."""
    from streamtune_cli.cli.common import console
    from streamtune_cli.spec import JobGraph, load_spec, spec_to_data

    spec = load_spec(file)
    graph = JobGraph(spec)
    if fmt == ShowFormat.mermaid:
        from streamtune_cli.report.mermaid import mermaid_flowchart

        typer.echo(mermaid_flowchart(graph), nl=False)
    elif fmt == ShowFormat.json:
        data = spec_to_data(spec)
        data["topological_order"] = graph.topological_order
        typer.echo(json.dumps(data, indent=2))
    else:
        console.print(dag_tree(graph))


def dag_tree(graph):  # noqa: ANN001, ANN201 - rich types stay out of the module's import cost
    """A rich Tree from the sources down; an operator reached twice is shown once and referenced after.

    Built with an explicit stack, not recursion, so a chain of thousands of operators is fine.
    """
    from rich.tree import Tree

    spec = graph.spec
    root = Tree(f"[bold]{spec.name}[/bold]  target {spec.workload.rate_rps:,.0f} rec/s ({spec.workload.schedule.kind})")
    shown: set[str] = set()

    def label(op_id: str) -> str:
        op = graph.operator(op_id)
        return f"[bold]{op.id}[/bold] [dim]{op.kind.value}[/dim] p={op.parallelism} cost={op.cost_us:g}µs sel={op.selectivity:g}"

    # Depth-first in the same order as a recursive walk: push children reversed so the first pops first.
    stack: list[tuple[Any, str, str]] = [(root, source, "") for source in reversed(graph.sources)]
    while stack:
        parent, op_id, via = stack.pop()
        prefix = f"[cyan]{via}[/cyan] " if via else ""
        if op_id in shown:
            parent.add(f"{prefix}{op_id} [dim](see above)[/dim]")
            continue
        shown.add(op_id)
        node = parent.add(prefix + label(op_id))
        for down in reversed(graph.downstream(op_id)):
            edge = graph.edge(op_id, down)
            via_text = edge.partitioning.value + (f"({', '.join(edge.key)})" if edge.key else "")
            stack.append((node, down, f"─{via_text}→"))
    return root


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, validate, "validate")
    add_command(app, show, "show")
