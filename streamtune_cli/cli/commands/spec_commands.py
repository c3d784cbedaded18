"""`streamtune validate` and `streamtune show`: check job specs and display their DAGs."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, List

import typer

ORDER = 10

# The spec as `show --format json` prints it, and the JSON Schema that `streamtune schema` writes for it.
SPEC_SCHEMA = "streamtune.spec/1"
SPEC_SCHEMA_ID = "urn:streamtune:spec:1"


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


def validate(
    files: List[str] = typer.Argument(
        ...,
        help="YAML files or folders (searched recursively for *.yaml and *.yml): job specs, bench suites or gate "
        "rules. Globs such as 'configs/**/*.yaml' are expanded.",
    ),
    no_sql: bool = typer.Option(False, "--no-sql", help="Skip checking SQL expressions (other commands still check them)."),
) -> None:
    """Check job specs, bench suites and gate rules: a table of every file, then every problem; exit 2 if any
    file is invalid."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    import traceback

    from streamtune_cli.cli.common import console, debug_state, err_console
    from streamtune_cli.errors import StreamtuneError

    table = Table(title="streamtune files", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    # File paths never fold: on 80 columns the contents wrap at word boundaries instead.
    table.add_column("file", no_wrap=True)
    table.add_column("contents", overflow="fold", min_width=20)
    table.add_column("status", no_wrap=True)
    failures: list[str] = []
    for path in _yaml_files(files):
        try:
            kind, name, contents = _check_file(path, no_sql)
        except StreamtuneError as exc:
            if debug_state["on"]:
                traceback.print_exc()
            failures.append(str(exc))
            table.add_row(str(path), "see below", "[red]invalid[/red]")
            continue
        table.add_row(str(path), f"{kind} [bold]{escape(name)}[/bold]: {contents}", "[green]valid[/green]")
    console.print(table)
    for message in failures:
        err_console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    if failures:
        err_console.print(f"{len(failures)} of {table.row_count} files invalid", highlight=False)
        raise typer.Exit(2)


def _yaml_files(arguments: list[str]) -> list[Path]:
    """The files named, with folders searched recursively for YAML (sorted, so the table is stable)."""
    from streamtune_cli.cli.common import expand_paths

    paths: list[Path] = []
    for path in expand_paths(arguments):
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            paths.append(path)
    return paths


def _check_file(path: Path, no_sql: bool) -> tuple[str, str, str]:
    """(kind, name, contents) of one valid file; its problems raise a SpecError naming file:line:col."""
    from streamtune_cli.spec import JobGraph
    from streamtune_cli.spec.loader import spec_from_data
    from streamtune_cli.spec.yaml_positions import load_yaml_file

    doc = load_yaml_file(path)
    kind = config_kind(doc.data)
    if kind == "gate rules":
        from streamtune_cli.gate_rules import rules_from_doc

        rules = rules_from_doc(doc)
        return kind, rules.rules.name, f"{len(rules.rules.rules)} rules"
    if kind == "bench suite":
        from streamtune_cli.bench import suite_from_doc

        suite = suite_from_doc(doc, path)
        return kind, suite.suite.name, f"{len(suite.jobs)} jobs, {len(suite.suite.tuners)} tuners"
    spec = spec_from_data(doc, check_sql_expressions=not no_sql)
    graph = JobGraph(spec)
    contents = (
        f"{len(spec.operators)} operators, {len(spec.edges)} edges, "
        f"{len(graph.sources)} source(s), {len(graph.sinks)} sink(s)"
    )
    return kind, spec.name, contents


def show(
    file: Path = typer.Argument(..., help="Job spec YAML file."),
    fmt: ShowFormat = typer.Option(ShowFormat.text, "--format", "-f", help="text (tree), mermaid (flowchart) or json."),
    out: str = typer.Option("-", "--out", "-o", metavar="PATH", help="Where to write it ('-': stdout)."),
) -> None:
    """Show a job's DAG as a tree, a Mermaid flowchart (renders on GitHub) or JSON (every field, defaults
    included)."""
    from streamtune_cli.cli.common import console, print_written, write_output
    from streamtune_cli.spec import JobGraph, load_spec

    spec = load_spec(file)
    graph = JobGraph(spec)
    if fmt == ShowFormat.mermaid:
        from streamtune_cli.report.mermaid import mermaid_flowchart

        text = mermaid_flowchart(graph)
    elif fmt == ShowFormat.json:
        text = json.dumps(spec_json(spec, graph), indent=2) + "\n"
    elif out == "-":
        console.print(dag_tree(graph))
        return
    else:
        text = _render_plain(dag_tree(graph))
    print_written([write_output(out, text)])


def spec_json(spec, graph) -> dict[str, Any]:  # noqa: ANN001 - JobSpec, JobGraph
    """`show --format json`: every field of the spec, defaults included (what the sim and the planner will
    use), under its schema name, and the operators in topological order. Without `schema` and
    `topological_order` it is a valid spec (the JSON Schema of `streamtune schema`)."""
    return {
        "schema": SPEC_SCHEMA,
        **spec.model_dump(mode="json", by_alias=True),
        "topological_order": graph.topological_order,
    }


def _render_plain(renderable) -> str:  # noqa: ANN001
    """A rich renderable as plain text (no colours), for a file."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None, soft_wrap=False).print(renderable)
    return buffer.getvalue()


def schema(
    out: str = typer.Option("-", "--out", "-o", metavar="PATH", help="Where to write it ('-': stdout)."),
) -> None:
    """The JSON Schema of job specs, generated from the spec models, so editors complete and check specs.

    With the YAML extension of VS Code (yaml-language-server), a spec's first line
    `# yaml-language-server: $schema=streamtune-spec.schema.json` points it at the file.
    """
    from streamtune_cli.cli.common import print_written, write_output

    print_written([write_output(out, spec_json_schema())])


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a job spec as written in YAML: field names as spelt there (`from`,
    `to`), the models' bounds, enums and descriptions."""
    from streamtune_cli.spec.models import JobSpec

    generated = JobSpec.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SPEC_SCHEMA_ID,
        **generated,
        "title": "streamtune job spec",
        "description": f"A streamtune job spec ({SPEC_SCHEMA}); docs/spec.md describes every field.",
    }


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
    add_command(app, schema, "schema")
