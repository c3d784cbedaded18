"""Mermaid flowcharts of job DAGs that render on GitHub, with optional subgraphs (fused groups)."""

from __future__ import annotations

from typing import Callable, Iterable

from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import Edge, Operator

__all__ = ["mermaid_flowchart", "default_node_label", "default_edge_label"]


def _escape(text: str) -> str:
    # Mermaid quoted labels break on raw double quotes; its entity syntax is #quot;
    return text.replace('"', "#quot;")


def default_node_label(op: Operator) -> str:
    return f"{op.id}<br/>{op.kind.value} · p={op.parallelism}"


def default_edge_label(edge: Edge) -> str:
    if edge.key:
        return f"{edge.partitioning.value}({', '.join(edge.key)})"
    return edge.partitioning.value


def mermaid_flowchart(
    graph: JobGraph,
    *,
    node_label: Callable[[Operator], str] = default_node_label,
    edge_label: Callable[[Edge], str] = default_edge_label,
    groups: Iterable[tuple[str, list[str]]] = (),
    direction: str = "LR",
) -> str:
    """`flowchart` text; each group (title, operator ids) becomes a subgraph box."""
    node_ids = {op_id: f"n{i}" for i, op_id in enumerate(graph.topological_order)}
    lines = [f"flowchart {direction}"]
    grouped: set[str] = set()
    for index, (title, members) in enumerate(groups):
        lines.append(f'  subgraph g{index}["{_escape(title)}"]')
        for op_id in members:
            lines.append(f'    {node_ids[op_id]}["{_escape(node_label(graph.operator(op_id)))}"]')
            grouped.add(op_id)
        lines.append("  end")
    for op_id in graph.topological_order:
        if op_id not in grouped:
            lines.append(f'  {node_ids[op_id]}["{_escape(node_label(graph.operator(op_id)))}"]')
    for src, dst in sorted(graph.nx.edges, key=lambda e: (node_ids[e[0]], node_ids[e[1]])):
        label = _escape(edge_label(graph.edge(src, dst)))
        lines.append(f'  {node_ids[src]} -->|"{label}"| {node_ids[dst]}')
    return "\n".join(lines) + "\n"
