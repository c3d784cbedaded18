"""FusionPlan reports: the JSON document, Markdown with a Mermaid DAG (fused stages as subgraphs), and rich
tables for the terminal that stay readable at 80 columns (no name split inside a word)."""

from __future__ import annotations

from typing import Any

from streamtune_cli.fusion.emit import joint_spec as _joint_spec
from streamtune_cli.fusion.plan import COMPARED_PLANS, Boundary, FusionPlan, Savings
from streamtune_cli.fusion.planner import fmt_bytes_per_s, fmt_cpu, fmt_ratio
from streamtune_cli.report.markdown import fmt_number, md_table
from streamtune_cli.report.mermaid import mermaid_flowchart
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import Edge, JobSpec, Operator

__all__ = [
    "fusion_json",
    "fusion_markdown",
    "fusion_renderables",
    "boundary_text",
    "savings_text",
    "compared_rows",
    "joint_spec",
]

# A word longer than this may still be folded in a terminal table (a column cannot grow without end).
_LONGEST_UNSPLIT_WORD = 32


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
        ("keeps up as written", "yes" if before.max_utilization <= 1 + 1e-9 else f"no ({fmt_ratio(before.max_utilization)}x)"),
    ]


def joint_spec(plan: FusionPlan) -> JobSpec:
    """The spec deployed as the plan's joint plan says (see fusion.emit.joint_spec)."""
    if plan.joint is None:
        raise ValueError("this plan has no joint plan (--mode flink)")
    return _joint_spec(plan.spec, plan.joint)


def compared_rows(plan: FusionPlan) -> list[list[str]]:
    """One row per compared plan: name, tasks, CPU, worst utilization, keeps up."""
    rows = []
    for key, label in COMPARED_PLANS.items():
        estimate = plan.compared.get(key)
        if estimate is None:
            continue
        keeps_up = estimate.max_utilization <= 1 + 1e-9
        rows.append(
            [
                label,
                str(estimate.tasks),
                fmt_cpu(estimate.cpu_us_per_s),
                fmt_ratio(estimate.max_utilization),
                "yes" if keeps_up else "no",
            ]
        )
    return rows


_COMPARED_HEADER = ["plan", "tasks", "CPU", "worst util", "keeps up"]


def _joint_rows(plan: FusionPlan) -> list[list[str]]:
    assert plan.joint is not None
    return [
        [stage.name, str(stage.parallelism), fmt_number(stage.estimate.input_rps), fmt_ratio(stage.estimate.utilization)]
        for stage in plan.joint.stages
    ]


def _cut_rows(plan: FusionPlan) -> list[list[str]]:
    assert plan.joint is not None
    return [[f"{edge.src} → {edge.dst}", edge.reason] for edge in plan.joint.edges if not edge.fused]


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
    lines += [f"- {note}" for note in plan.notes]
    if plan.notes:
        lines.append("")
    if plan.compared:
        lines += ["## Compared", "", f"Estimates at {plan.rate_rps:,.0f} rec/s, by the cost model below.", ""]
        lines.append(md_table(_COMPARED_HEADER, compared_rows(plan), numeric=[False, True, True, True, False]))
    if plan.joint is not None:
        lines += ["## Joint plan", "", "Chains and parallelism decided together for the peak rate "
                  f"(search: {plan.joint.searched}).", ""]
        lines.append(md_table(["chain", "p", "input rec/s", "utilization"], _joint_rows(plan), numeric=[False, True, True, True]))
        cuts = _cut_rows(plan)
        if cuts:
            lines.append(md_table(["chainable edge cut", "why"], cuts))
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


def _min_widths(header: list[str], rows: list[list[str]]) -> list[int]:
    """Per column, the longest word in it (capped): a column at least that wide wraps only between words."""
    widths = []
    for i, title in enumerate(header):
        words = [w for row in rows for w in str(row[i]).split()] + title.split()
        widths.append(min(_LONGEST_UNSPLIT_WORD, max((len(w) for w in words), default=1)))
    return widths


def _table(title: str, header: list[str], rows: list[list[Any]], right: tuple[int, ...] = (), show_header: bool = True) -> Any:
    """A rich table whose cells are plain text (names like `[hash(k)]` are not markup) and whose columns
    wrap between words, so a name or path is never split inside a word at 80 columns."""
    from rich.table import Table
    from rich.text import Text

    texts = [[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row] for row in rows]
    plain = [[t.plain for t in row] for row in texts]
    table = Table(title=title, show_header=show_header)
    for i, (column, width) in enumerate(zip(header, _min_widths(header, plain))):
        table.add_column(column, justify="right" if i in right else "left", min_width=width, overflow="fold")
    for row in texts:
        table.add_row(*row)
    return table


def fusion_renderables(plan: FusionPlan, max_rows: int = 60) -> list[Any]:
    """Rich renderables for the terminal: summary, notes, compared plans, stages, edges, the joint plan and
    proposals.

    Tables stop after `max_rows` rows (fused stages and exchanges first); the JSON and Markdown reports
    always list everything.
    """
    from rich.text import Text

    out: list[Any] = [
        _table(f"fusion plan: {plan.spec.name}", ["", ""], [[Text(k, style="bold"), v] for k, v in _summary_rows(plan)], show_header=False)
    ]
    out += [Text(note) for note in plan.notes]
    if plan.compared:
        out.append(
            _table(f"compared at {plan.rate_rps:,.0f} rec/s", _COMPARED_HEADER, compared_rows(plan), right=(1, 2, 3))
        )

    ranked = sorted(range(len(plan.stages)), key=lambda i: (not plan.stages[i].fused, -plan.stages[i].estimate.utilization))
    shown = set(ranked[:max_rows])
    rows: list[list[Any]] = []
    for i, stage in enumerate(plan.stages):
        if i not in shown:
            continue
        util = stage.estimate.utilization
        rows.append(
            [
                stage.name,
                str(stage.parallelism),
                fmt_number(stage.estimate.input_rps),
                Text(fmt_ratio(util), style="red" if util > 1 else ""),
                "; ".join(stage.pushdowns),
            ]
        )
    hidden_stages = len(plan.stages) - len(rows)
    if hidden_stages:
        rows.append([f"… {hidden_stages} more unfused stages (see --json or --markdown)", "", "", "", ""])
    out.append(_table("stages (tasks) at the spec's parallelism", ["stage", "p", "input rec/s", "util", "notes"], rows, right=(1, 2, 3)))

    rows = []
    for boundary in plan.boundaries[:max_rows]:
        label = "saves" if boundary.fused else "would save"
        rows.append(
            [
                _edge_name(boundary),
                Text(boundary_text(boundary), style="green" if boundary.fused else ""),
                f"{label} {savings_text(boundary.savings)}",
            ]
        )
    hidden_edges = len(plan.boundaries) - min(len(plan.boundaries), max_rows)
    if hidden_edges:
        rows.append([f"… {hidden_edges} more edges (see --json or --markdown)", "", ""])
    out.append(_table("edges", ["edge", "fused?", "savings per second"], rows))

    if plan.joint is not None:
        rows = [list(row) for row in _joint_rows(plan)[:max_rows]]
        hidden = len(plan.joint.stages) - len(rows)
        if hidden:
            rows.append([f"… {hidden} more chains (see --json or --markdown)", "", "", ""])
        out.append(
            _table(
                f"joint plan: chains and parallelism for {plan.rate_rps:,.0f} rec/s",
                ["chain", "p", "input rec/s", "util"],
                rows,
                right=(1, 2, 3),
            )
        )
        cuts = _cut_rows(plan)
        if cuts:
            out.append(_table("joint plan: chainable edges it cuts", ["edge", "why"], cuts[:max_rows]))
    if plan.proposals:
        out.append(_table("proposals", ["proposal"], [[proposal.message] for proposal in plan.proposals]))
    return out
