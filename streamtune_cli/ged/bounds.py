"""Polynomial-time GED bounds: Riesen & Bunke bipartite upper bound (costed
exactly along its induced edit path) and label-multiset / BRANCH lower bounds."""

from __future__ import annotations

import networkx as nx
import numpy as np

from ._core import PairData, ceil_if_integral, oriented_pair
from ._encode import encode_pair
from .model import DEFAULT_COSTS, EditCosts, GedResult

__all__ = ["bounded_ged", "bounds_core", "initial_bounds", "lower_bound"]

_EPS = 1e-9


def initial_bounds(pd: PairData, refine: bool = True) -> tuple[float, float, np.ndarray]:
    """(lower, upper, mapping achieving upper) for a prepared pair.

    upper: the best true edit-path cost among the Riesen & Bunke assignment,
    the BRANCH assignment, and (when a gap remains) a local search from the
    better of the two.  lower: max(label-multiset bound, BRANCH bound).
    """
    if pd.n1 == 0 or pd.n2 == 0:
        # nothing to choose: delete everything / insert everything
        f = np.full(pd.n1, pd.n2, dtype=np.int64)
        c = pd.mapping_cost(f)
        return c, c, f
    branch_lb, branch_map = pd.branch_bound()
    lower = ceil_if_integral(branch_lb, pd.integral)
    bp_map = pd.bipartite_mapping()
    cands = np.stack([bp_map, branch_map])
    costs = pd.mapping_costs(cands)
    best = int(np.argmin(costs))
    f, upper = cands[best].copy(), float(costs[best])
    if lower < upper - _EPS:
        # usually weaker than BRANCH, so only computed when there is a gap
        lower = max(lower, ceil_if_integral(pd.label_multiset_bound(), pd.integral))
    if refine and lower < upper - _EPS:
        f, upper = pd.refine(f, upper)
    return min(lower, upper), upper, f


def bounds_core(pd: PairData) -> tuple[float, float, bool]:
    lower, upper, _ = initial_bounds(pd)
    exact = lower >= upper - _EPS
    return (upper if exact else lower), upper, exact


def bounded_ged(g1: nx.DiGraph, g2: nx.DiGraph, costs: EditCosts = DEFAULT_COSTS) -> GedResult:
    """Fast GED bounds in polynomial time (no search).

    `upper` is the exact cost of the edit path induced by the bipartite
    node assignment (Riesen & Bunke, improved by a short local search);
    `lower` is the larger of the label-multiset and BRANCH lower bounds.
    `exact` is True only when they meet.
    """
    e1, e2, k = encode_pair(g1, g2)
    pd = oriented_pair(e1.labels, e1.adj, e2.labels, e2.adj, k, costs)
    lower, upper, exact = bounds_core(pd)
    return GedResult(lower=lower, upper=upper, exact=exact)


def lower_bound(g1: nx.DiGraph, g2: nx.DiGraph, costs: EditCosts = DEFAULT_COSTS) -> float:
    """Only the lower bound: max(label-multiset bound, BRANCH bound)."""
    e1, e2, k = encode_pair(g1, g2)
    pd = PairData(e1.labels, e1.adj, e2.labels, e2.adj, k, costs)
    if pd.n1 == 0 or pd.n2 == 0:
        return pd.mapping_cost(np.full(pd.n1, pd.n2, dtype=np.int64))
    return ceil_if_integral(max(pd.label_multiset_bound(), pd.branch_bound()[0]), pd.integral)
