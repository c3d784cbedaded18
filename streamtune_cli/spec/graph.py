"""JobGraph: a validated JobSpec as a networkx DiGraph, with the queries every algorithm needs."""

from __future__ import annotations

from functools import cached_property

import networkx as nx

from streamtune_cli.spec.models import Edge, JobSpec, Operator, OperatorKind

__all__ = ["JobGraph", "DagQueries"]


class DagQueries:
    """The DAG queries every algorithm needs, over `self.nx` (a DiGraph) and the subclass's `operator(id)`
    (with `.kind`, `.rate_share`) and `edge(src, dst)`. JobGraph (the full spec) and tuning.view.JobView
    (what a tuner may see) share them."""

    nx: nx.DiGraph

    def operator(self, op_id: str):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def edge(self, src: str, dst: str):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    @cached_property
    def topological_order(self) -> list[str]:
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
    """Read-only graph view of a JobSpec; node = operator id, edge data `edge` = the spec's Edge."""

    def __init__(self, spec: JobSpec):
        self.spec = spec
        graph = nx.DiGraph()
        for op in spec.operators:
            graph.add_node(op.id, operator=op, kind=op.kind.value)
        for edge in spec.edges:
            graph.add_edge(edge.src, edge.dst, edge=edge, partitioning=edge.partitioning.value)
        self.nx = graph

    def operator(self, op_id: str) -> Operator:
        return self.nx.nodes[op_id]["operator"]

    def edge(self, src: str, dst: str) -> Edge:
        return self.nx.edges[src, dst]["edge"]

    def labeled(self) -> nx.DiGraph:
        """Structure only (node label `kind`, edge label `partitioning`): the input of graph edit distance."""
        graph = nx.DiGraph()
        graph.add_nodes_from((n, {"kind": d["kind"]}) for n, d in self.nx.nodes(data=True))
        graph.add_edges_from((u, v, {"partitioning": d["partitioning"]}) for u, v, d in self.nx.edges(data=True))
        return graph
