"""Mermaid flowcharts of job DAGs that render on GitHub, with optional subgraphs (fused groups).

Labels come from user text (operator names such as Flink's `Source: bids -> Calc[3]`, keys, chain names),
and Mermaid renders quoted labels as HTML: a raw `"` ends the label, `<`/`>` start or end a tag (or make
GitHub's sanitizer drop the text), `#...;` and `&...;` are decoded as entities, a leading backtick turns the
label into a Markdown string. Every such character is written as a Mermaid entity code (`#60;`), which
Mermaid decodes to the character itself; `<br/>` is the only markup a label may carry (a line break).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence, Union

from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import Edge, Operator

__all__ = ["mermaid_flowchart", "mermaid_text", "default_node_label", "default_edge_label", "LINE_BREAK"]

LINE_BREAK = "<br/>"

# `#` first: the codes written for the other characters start with it. Decimal codes are what Mermaid's
# own examples use (`#60;`), and `#quot;` is its documented name for the double quote.
_CODES = {
    "#": "#35;",
    "&": "#38;",
    '"': "#quot;",
    "<": "#60;",
    ">": "#62;",
    "`": "#96;",
    "|": "#124;",
}

# A label: one string whose lines are separated by LINE_BREAK, or the lines themselves.
Label = Union[str, Sequence[str]]


def mermaid_text(text: str) -> str:
    """One line of label text with every character that Mermaid or HTML would interpret replaced by its code."""
    flat = " ".join(str(text).split("\n")).replace("\r", " ")
    return "".join(_CODES.get(char, char) for char in flat)


def _label(label: Label) -> str:
    lines = label.split(LINE_BREAK) if isinstance(label, str) else list(label)
    return LINE_BREAK.join(mermaid_text(line) for line in lines)


def default_node_label(op: Operator) -> list[str]:
    """The operator's name (its id too when the name differs), then kind and parallelism."""
    first = op.id if op.display_name == op.id else f"{op.display_name} ({op.id})"
    return [first, f"{op.kind.value} · p={op.parallelism}"]


def default_edge_label(edge: Edge) -> str:
    if edge.key:
        return f"{edge.partitioning.value}({', '.join(edge.key)})"
    return edge.partitioning.value


def mermaid_flowchart(
    graph: JobGraph,
    *,
    node_label: Callable[[Operator], Label] = default_node_label,
    edge_label: Callable[[Edge], Label] = default_edge_label,
    groups: Iterable[tuple[str, list[str]]] = (),
    direction: str = "LR",
) -> str:
    """`flowchart` text; each group (title, operator ids) becomes a subgraph box.

    Labels may be a list of lines or one string with LINE_BREAK between lines; the text of every line is
    escaped here, so callers pass plain text. Node ids are generated (`n0`, `n1`...), never the operator ids.
    """
    node_ids = {op_id: f"n{i}" for i, op_id in enumerate(graph.topological_order)}
    lines = [f"flowchart {direction}"]
    grouped: set[str] = set()
    for index, (title, members) in enumerate(groups):
        lines.append(f'  subgraph g{index}["{_label(title)}"]')
        for op_id in members:
            lines.append(f'    {node_ids[op_id]}["{_label(node_label(graph.operator(op_id)))}"]')
            grouped.add(op_id)
        lines.append("  end")
    for op_id in graph.topological_order:
        if op_id not in grouped:
            lines.append(f'  {node_ids[op_id]}["{_label(node_label(graph.operator(op_id)))}"]')
    for src, dst in sorted(graph.nx.edges, key=lambda e: (node_ids[e[0]], node_ids[e[1]])):
        label = _label(edge_label(graph.edge(src, dst)))
        lines.append(f'  {node_ids[src]} -->|"{label}"| {node_ids[dst]}')
    return "\n".join(lines) + "\n"
