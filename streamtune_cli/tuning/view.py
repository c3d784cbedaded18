"""The blinded job view a tuner gets: what a real deployment exposes, never the simulator's ground truth.

A tuner on a real cluster knows the job's topology (operators, their kinds, keys and partitioning), each
operator's current and max parallelism, how the offered input splits over the sources, and what the cluster
measures. It never knows `cost_us`, declared selectivity, USL scaling, key skew or restart time: those are
what the sim uses as truth. The view is built from a spec by copying only the visible fields, and holds no
reference to the spec, so nothing hidden can leak through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from streamtune_cli.spec.graph import DagQueries
from streamtune_cli.spec.models import OperatorKind, Partitioning

if TYPE_CHECKING:
    from streamtune_cli.spec.models import JobSpec

__all__ = ["OperatorView", "EdgeView", "JobView", "VISIBLE_OPERATOR_FIELDS", "HIDDEN_OPERATOR_FIELDS"]

# What a tuner may read of an operator, and what it must never see (the executor's ground truth).
VISIBLE_OPERATOR_FIELDS = ("id", "kind", "max_parallelism", "key", "rate_share")
HIDDEN_OPERATOR_FIELDS = ("cost_us", "selectivity", "record_bytes", "scaling", "key_skew")


@dataclass(frozen=True)
class OperatorView:
    id: str
    kind: OperatorKind
    max_parallelism: int
    key: tuple[str, ...] | None = None
    rate_share: float | None = None  # sources: share of the offered input (known from the input topics)


@dataclass(frozen=True)
class EdgeView:
    src: str
    dst: str
    partitioning: Partitioning
    key: tuple[str, ...] | None = None


class JobView(DagQueries):
    """Topology and deployment facts of a job, with the DAG queries (shared with JobGraph) the tuners use."""

    def __init__(self, name: str, operators: list[OperatorView], edges: list[EdgeView]):
        self.name = name
        self._operators = {op.id: op for op in operators}
        self._edges = {(e.src, e.dst): e for e in edges}
        graph = nx.DiGraph()
        for op in operators:
            graph.add_node(op.id, kind=op.kind.value)
        for e in edges:
            graph.add_edge(e.src, e.dst, partitioning=e.partitioning.value)
        self.nx = graph

    @classmethod
    def from_spec(cls, spec: "JobSpec") -> "JobView":
        operators = [
            OperatorView(
                id=op.id,
                kind=op.kind,
                max_parallelism=op.max_parallelism,
                key=tuple(op.key) if op.key else None,
                rate_share=op.rate_share,
            )
            for op in spec.operators
        ]
        edges = [
            EdgeView(e.src, e.dst, e.partitioning, tuple(e.key) if e.key else None) for e in spec.edges
        ]
        return cls(spec.name, operators, edges)

    def operator(self, op_id: str) -> OperatorView:
        return self._operators[op_id]

    @property
    def operators(self) -> list[OperatorView]:
        return [self._operators[op] for op in self.topological_order]

    def edge(self, src: str, dst: str) -> EdgeView:
        return self._edges[(src, dst)]

    def labeled(self) -> nx.DiGraph:
        """Structure only (node label `kind`, edge label `partitioning`), as graph edit distance compares."""
        return self.nx.copy()

    def signature(self) -> tuple:
        """Everything the view holds, as plain data: two specs with equal signatures look alike to a tuner."""
        return (
            self.name,
            tuple(sorted((o.id, o.kind.value, o.max_parallelism, o.key, o.rate_share) for o in self._operators.values())),
            tuple(sorted((e.src, e.dst, e.partitioning.value, e.key) for e in self._edges.values())),
        )

