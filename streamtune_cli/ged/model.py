"""Value types shared by the GED modules: edit costs, results, and the
networkx-equivalent cost callables used to cross-check our solvers."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import networkx as nx

NODE_LABEL_ATTR = "kind"
EDGE_LABEL_ATTR = "partitioning"

__all__ = [
    "DEFAULT_COSTS",
    "EDGE_LABEL_ATTR",
    "NODE_LABEL_ATTR",
    "EditCosts",
    "GedResult",
    "edge_label",
    "networkx_cost_kwargs",
    "node_label",
]


def node_label(attrs: Mapping[str, Any]) -> Hashable:
    """Label of a node given its attribute dict; a missing `kind` is None."""
    return attrs.get(NODE_LABEL_ATTR)


def edge_label(attrs: Mapping[str, Any]) -> Hashable:
    """Label of an edge given its attribute dict; a missing `partitioning` is None."""
    return attrs.get(EDGE_LABEL_ATTR)


@dataclass(frozen=True)
class EditCosts:
    """Costs of the six elementary edit operations.

    Substituting a node (edge) by one with an equal label costs 0; with a
    different label it costs `node_sub` (`edge_sub`).  All costs must be
    finite and non-negative.
    """

    node_sub: float = 1.0
    node_del: float = 1.0
    node_ins: float = 1.0
    edge_sub: float = 1.0
    edge_del: float = 1.0
    edge_ins: float = 1.0

    def __post_init__(self) -> None:
        for name in ("node_sub", "node_del", "node_ins", "edge_sub", "edge_del", "edge_ins"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"EditCosts.{name} must be a finite number >= 0, got {value!r}")

    @property
    def is_symmetric(self) -> bool:
        """True when deletion and insertion cost the same, so GED(a, b) == GED(b, a)."""
        return self.node_del == self.node_ins and self.edge_del == self.edge_ins

    @property
    def is_integral(self) -> bool:
        """True when every cost is an integer, so every GED is an integer too."""
        return all(float(c).is_integer() for c in self.as_tuple())

    def as_tuple(self) -> tuple[float, float, float, float, float, float]:
        return (self.node_sub, self.node_del, self.node_ins, self.edge_sub, self.edge_del, self.edge_ins)

    def swapped(self) -> EditCosts:
        """Costs for the reversed problem: GED(a, b, c) == GED(b, a, c.swapped())."""
        return EditCosts(
            node_sub=self.node_sub,
            node_del=self.node_ins,
            node_ins=self.node_del,
            edge_sub=self.edge_sub,
            edge_del=self.edge_ins,
            edge_ins=self.edge_del,
        )


@dataclass(frozen=True)
class GedResult:
    """Outcome of a GED computation: a proven interval [lower, upper].

    `upper` is the cost of a concrete edit path, `lower` a proven lower
    bound; `exact` is True only when the two coincide (the optimum is known).
    """

    lower: float
    upper: float
    exact: bool

    def __post_init__(self) -> None:
        if self.lower > self.upper + 1e-9:
            raise ValueError(f"GedResult lower {self.lower} exceeds upper {self.upper}")
        if self.exact and abs(self.upper - self.lower) > 1e-9:
            raise ValueError("GedResult marked exact although lower < upper")

    @property
    def value(self) -> float:
        """Best known distance: the cost of the best edit path found (`upper`)."""
        return self.upper

    @property
    def gap(self) -> float:
        return self.upper - self.lower


# Module-level functions bound with functools.partial (not lambdas) so the
# kwargs stay picklable for process pools.
def _subst(a: Mapping[str, Any], b: Mapping[str, Any], *, attr: str, cost: float) -> float:
    return 0.0 if a.get(attr) == b.get(attr) else cost


def _const(_attrs: Mapping[str, Any], *, cost: float) -> float:
    return cost


DEFAULT_COSTS = EditCosts()


def networkx_cost_kwargs(costs: EditCosts = DEFAULT_COSTS) -> dict[str, Callable[..., float]]:
    """Keyword arguments that make `networkx.graph_edit_distance` use `costs`.

    Example: ``nx.graph_edit_distance(g1, g2, **networkx_cost_kwargs(costs))``.
    """
    return {
        "node_subst_cost": partial(_subst, attr=NODE_LABEL_ATTR, cost=float(costs.node_sub)),
        "node_del_cost": partial(_const, cost=float(costs.node_del)),
        "node_ins_cost": partial(_const, cost=float(costs.node_ins)),
        "edge_subst_cost": partial(_subst, attr=EDGE_LABEL_ATTR, cost=float(costs.edge_sub)),
        "edge_del_cost": partial(_const, cost=float(costs.edge_del)),
        "edge_ins_cost": partial(_const, cost=float(costs.edge_ins)),
    }


def _check_graph(g: Any) -> None:
    if not isinstance(g, nx.DiGraph) or g.is_multigraph():
        raise TypeError(f"expected a networkx.DiGraph, got {type(g).__name__}")
