"""JobGraph: a validated JobSpec as a DAG, with the queries every algorithm needs (and a networkx DiGraph
of it, built on first use: networkx costs a tenth of a second to import, which `validate` does not need)."""

from __future__ import annotations

import heapq
from functools import cached_property
from typing import TYPE_CHECKING

from streamtune_cli.spec.models import Edge, JobSpec, Operator, OperatorKind

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["JobGraph", "DagQueries", "lexicographic_topological_order"]


def lexicographic_topological_order(up: dict[str, list[str]], down: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm over `up`/`down` adjacency (every node a key of both; no repeated pairs), taking the
    smallest ready id first: the order networkx's `lexicographical_topological_sort` gives, without importing
    networkx. A cycle raises networkx's NetworkXUnfeasible, as that function does."""
    waiting = {node: len(ups) for node, ups in up.items()}
    ready = [node for node, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in down[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(order) != len(waiting):
        import networkx as nx

        raise nx.NetworkXUnfeasible("Graph contains a cycle or graph changed during iteration")
    return order


class DagQueries:
    """The DAG queries every algorithm needs, over `self.nx` (a DiGraph) and the subclass's `operator(id)`
    (with `.kind`, `.rate_share`) and `edge(src, dst)`. JobGraph (the full spec) and tuning.view.JobView
    (what a tuner may see) share them."""

    nx: "nx.DiGraph"

    def operator(self, op_id: str):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def edge(self, src: str, dst: str):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    @cached_property
    def topological_order(self) -> list[str]:
        import networkx as nx

        # Lexicographic tie-break keeps every report and decision order deterministic.
        return list(nx.lexicographical_topological_sort(self.nx))

    @property
    def sources(self) -> list[str]:
        return [n for n in self.topological_order if self.operator(n).kind == OperatorKind.source]

    @property
    def sinks(self) -> list[str]:
        return [n for n in self.topological_order if self.operator(n).kind == OperatorKind.sink]

    def upstream(self, op_id: str) -> list[str]:
        return sorted(self.nx.predecessors(op_id))

    def downstream(self, op_id: str) -> list[str]:
        return sorted(self.nx.successors(op_id))

    def successors(self, op_id: str) -> list[str]:
        """Downstream ids in edge insertion (spec) order, as networkx keeps them."""
        return list(self.nx.successors(op_id))

    def in_degree(self, op_id: str) -> int:
        return self.nx.in_degree(op_id)

    def edge_pairs(self) -> list[tuple[str, str]]:
        """Every (src, dst), in networkx's order: by source in node order, then edge insertion order."""
        return list(self.nx.edges)

    def in_edges(self, op_id: str) -> list:
        return [self.edge(u, op_id) for u in self.upstream(op_id)]

    def out_edges(self, op_id: str) -> list:
        return [self.edge(op_id, v) for v in self.downstream(op_id)]

    def source_rates(self, total_rate_rps: float) -> dict[str, float]:
        """Split a total target rate over the sources by their rate_share (equal shares by default)."""
        shares = {s: (self.operator(s).rate_share or 1.0) for s in self.sources}
        total = sum(shares.values())
        return {s: total_rate_rps * share / total for s, share in shares.items()}

    def __len__(self) -> int:
        return self.nx.number_of_nodes()


class JobGraph(DagQueries):
    """Read-only graph view of a JobSpec; node = operator id, edge data `edge` = the spec's Edge.

    Operators, edges, neighbours and the topological order come from plain dicts; `nx` (a networkx
    DiGraph with the same nodes in spec order and the same data) is built when something asks for it."""

    def __init__(self, spec: JobSpec):
        self.spec = spec
        self._operators: dict[str, Operator] = {op.id: op for op in spec.operators}
        self._edges: dict[tuple[str, str], Edge] = {}
        self._up: dict[str, list[str]] = {op_id: [] for op_id in self._operators}
        self._down: dict[str, list[str]] = {op_id: [] for op_id in self._operators}
        for edge in spec.edges:
            if (edge.src, edge.dst) not in self._edges:
                self._up.setdefault(edge.dst, []).append(edge.src)
                self._down.setdefault(edge.src, []).append(edge.dst)
            self._edges[(edge.src, edge.dst)] = edge  # a repeated edge: the last one, as networkx keeps it

    @cached_property
    def nx(self) -> "nx.DiGraph":  # type: ignore[override]
        import networkx as nx

        graph = nx.DiGraph()
        for op in self.spec.operators:
            graph.add_node(op.id, operator=op, kind=op.kind.value)
        for edge in self.spec.edges:
            graph.add_edge(edge.src, edge.dst, edge=edge, partitioning=edge.partitioning.value)
        return graph

    @cached_property
    def topological_order(self) -> list[str]:
        """Smallest id first among the ready ones (networkx's lexicographical order)."""
        return lexicographic_topological_order(self._up, self._down)

    def operator(self, op_id: str) -> Operator:
        return self._operators[op_id]

    def edge(self, src: str, dst: str) -> Edge:
        return self._edges[(src, dst)]

    def upstream(self, op_id: str) -> list[str]:
        return sorted(self._up[op_id])

    def downstream(self, op_id: str) -> list[str]:
        return sorted(self._down[op_id])

    def successors(self, op_id: str) -> list[str]:
        return list(self._down[op_id])

    def in_degree(self, op_id: str) -> int:
        return len(self._up[op_id])

    def edge_pairs(self) -> list[tuple[str, str]]:
        return [(src, dst) for src in self._operators for dst in self._down[src]]

    def __len__(self) -> int:
        return len(self._operators)

    def labeled(self) -> "nx.DiGraph":
        """Structure only (node label `kind`, edge label `partitioning`): the input of graph edit distance."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from((n, {"kind": d["kind"]}) for n, d in self.nx.nodes(data=True))
        graph.add_edges_from((u, v, {"partitioning": d["partitioning"]}) for u, v, d in self.nx.edges(data=True))
        return graph
