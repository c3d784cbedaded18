"""FusionPlan reports: the JSON document, Markdown with a Mermaid DAG (fused stages as subgraphs), and rich
tables for the terminal."""

from __future__ import annotations

from typing import Any

from streamtune_cli.fusion.plan import Boundary, FusionPlan, Savings
from streamtune_cli.fusion.planner import fmt_bytes_per_s, fmt_cpu, fmt_ratio
from streamtune_cli.report.markdown import fmt_number, md_table
from streamtune_cli.report.mermaid import mermaid_flowchart
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import Edge, Operator

__all__ = ["fusion_json", "fusion_markdown", "fusion_renderables", "boundary_text", "savings_text"]


def fusion_json(plan: FusionPlan) -> dict[str, Any]:
    """The JSON report (summary numbers at the top level, where `streamtune gate` reads them)."""
    return plan.to_dict()


def savings_text(savings: Savings) -> str:
    return (
        f"{fmt_bytes_per_s(savings.serialized_bytes_per_s)} serialized, {fmt_cpu(savings.cpu_us_per_s)} CPU, "
        f"{savings.hops_per_s:,.0f} hops/s, {savings.latency_ms:g} ms latency"
    )


def boundary_text(boundary: Boundary) -> str:
    """`fused (composed)`, or `exchange: hash edge on `auction`; parallelism 2 vs 4`."""
    if boundary.fused:
        text = f"fused ({boundary.how})"
        if boundary.spec_split:
            text += ", two operators in the spec"
        return text + (": " + "; ".join(boundary.reasons) if boundary.reasons else "")
    return "exchange: " + "; ".join(boundary.reasons)


def _edge_name(boundary: Boundary) -> str:
    part = boundary.partitioning + (f"({', '.join(boundary.key)})" if boundary.key else "")
    moved = ""
    if boundary.effective_partitioning and boundary.effective_partitioning != boundary.partitioning:
        key = f"({', '.join(boundary.effective_key)})" if boundary.effective_key else ""
        moved = f" → {boundary.effective_partitioning}{key}"
    return f"{boundary.src} → {boundary.dst} [{part}{moved}]"


def _summary_rows(plan: FusionPlan) -> list[tuple[str, str]]:
    savings, before, after = plan.savings, plan.before, plan.after
    return [
        ("mode", plan.mode),
        ("target rate", f"{plan.rate_rps:,.0f} rec/s"),
        ("operators / vertices", f"{len(plan.spec.operators)} / {len(plan.stages)}"),
        ("chains (fused stages)", str(len(plan.chains))),
        ("fused edges / exchanges", f"{sum(b.fused for b in plan.boundaries)} / {sum(not b.fused for b in plan.boundaries)}"),
        ("serialized bytes saved", fmt_bytes_per_s(savings.serialized_bytes_per_s)),
        ("CPU saved", fmt_cpu(savings.cpu_us_per_s)),
        ("queue hops saved", f"{savings.hops_per_s:,.0f} rec/s"),
        ("latency saved (longest path)", f"{savings.latency_ms:g} ms"),
        ("tasks", f"{before.tasks} -> {after.tasks}"),
        ("max utilization", f"{fmt_ratio(before.max_utilization)} -> {fmt_ratio(after.max_utilization)}"),
    ]


def fusion_markdown(plan: FusionPlan) -> str:
    """A Markdown report: summary, Mermaid DAG with fused stages as subgraphs, stages, edges, proposals."""
    graph = JobGraph(plan.spec)
    status = {(b.src, b.dst): b for b in plan.boundaries}

    def node_label(op: Operator) -> str:
        return f"{op.id}<br/>{op.kind.value} · p={op.parallelism}"

    def edge_label(edge: Edge) -> str:
        boundary = status[(edge.src, edge.dst)]
        part = edge.partitioning.value + (f"({', '.join(edge.key)})" if edge.key else "")
        return f"{part} · {'fused' if boundary.fused else 'exchange'}"

    groups = [(stage.name, list(stage.members)) for stage in plan.chains]
    lines = [f"# Fusion plan: {plan.spec.name}", ""]
    lines.append(md_table(["", "value"], _summary_rows(plan)))
    lines += ["## DAG", "", "Fused stages are boxes; every edge says whether it is fused.", ""]
    lines += ["```mermaid", mermaid_flowchart(graph, node_label=node_label, edge_label=edge_label, groups=groups).rstrip(), "```", ""]
    lines += ["## Stages", ""]
    rows = []
    for stage in plan.stages:
        est = stage.estimate
        rows.append(
            [
                stage.name,
                stage.parallelism,
                fmt_number(est.input_rps),
                fmt_number(est.capacity_rps),
                fmt_ratio(est.utilization),
                ", ".join(stage.spec_operators),
                "; ".join(stage.pushdowns) or ("" if stage.exact_semantics else "semantics kept as the member list"),
            ]
        )
    lines.append(
        md_table(
            ["stage", "p", "input rec/s", "capacity rec/s", "utilization", "spec operators", "notes"],
            rows,
            numeric=[False, True, True, True, True, False, False],
        )
    )
    lines += ["## Edges", ""]
    rows = []
    for boundary in plan.boundaries:
        label = "saves" if boundary.fused else "would save"
        rows.append([_edge_name(boundary), boundary_text(boundary), f"{label} {savings_text(boundary.savings)}"])
    lines.append(md_table(["edge", "fused?", "savings per second"], rows))
    if plan.proposals:
        lines += ["## Proposals", ""]
        lines += [f"- {proposal.message}" for proposal in plan.proposals]
        lines.append("")
    model = plan.cost_model.as_dict()
    lines += ["## Cost model", ""]
    lines.append(md_table(["parameter", "value"], [(k, f"{v:g}") for k, v in model.items()]))
    return "\n".join(lines)


def fusion_renderables(plan: FusionPlan, max_rows: int = 60) -> list[Any]:
    """Rich renderables for the terminal: summary, stages and edges tables, proposals.

    Tables stop after `max_rows` rows (fused stages and exchanges first); the JSON and Markdown reports
    always list everything.
    """
    from rich.table import Table
    from rich.text import Text

    summary = Table(title=f"fusion plan: {plan.spec.name}", show_header=False)
    summary.add_column("", style="bold")
    summary.add_column("")
    # Every cell is a Text: names like `j [Source: s]` or `[hash(k)]` must not be read as rich markup.
    for name, value in _summary_rows(plan):
        summary.add_row(Text(name), Text(value))

    stages = Table(title="stages (tasks)")
    for column, justify in (("stage", "left"), ("p", "right"), ("input rec/s", "right"), ("util", "right"), ("notes", "left")):
        stages.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    ranked = sorted(range(len(plan.stages)), key=lambda i: (not plan.stages[i].fused, -plan.stages[i].estimate.utilization))
    shown = set(ranked[:max_rows])
    shown_stages = [stage for i, stage in enumerate(plan.stages) if i in shown]
    for stage in shown_stages:
        util = stage.estimate.utilization
        style = "red" if util > 1 else ""
        notes = "; ".join(stage.pushdowns)
        stages.add_row(
            Text(stage.name), str(stage.parallelism), fmt_number(stage.estimate.input_rps),
            Text(fmt_ratio(util), style=style), Text(notes),
        )

    edges = Table(title="edges")
    for column in ("edge", "fused?", "savings per second"):
        edges.add_column(column, overflow="fold")
    for boundary in plan.boundaries[:max_rows]:
        style = "green" if boundary.fused else ""
        label = "saves" if boundary.fused else "would save"
        edges.add_row(
            Text(_edge_name(boundary)), Text(boundary_text(boundary), style=style),
            Text(f"{label} {savings_text(boundary.savings)}"),
        )
    hidden_stages = len(plan.stages) - len(shown_stages)
    hidden_edges = len(plan.boundaries) - min(len(plan.boundaries), max_rows)
    if hidden_stages:
        stages.add_row(f"… {hidden_stages} more unfused stages (see --json or --markdown)", "", "", "", "")
    if hidden_edges:
        edges.add_row(f"… {hidden_edges} more edges (see --json or --markdown)", "", "")
    out: list[Any] = [summary, stages, edges]
    if plan.proposals:
        proposals = Table(title="proposals")
        proposals.add_column("proposal", overflow="fold")
        for proposal in plan.proposals:
            proposals.add_row(Text(proposal.message))
        out.append(proposals)
    return out
