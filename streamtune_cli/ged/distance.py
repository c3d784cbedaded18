"""Front door for one pair: exact (anytime) GED for small graphs, polynomial
bounds for larger ones."""

from __future__ import annotations

import time

import networkx as nx

from ._core import oriented_pair
from ._encode import EncodedGraph, encode_pair
from .bounds import bounds_core
from .exact import exact_core
from .model import DEFAULT_COSTS, EditCosts, GedResult

__all__ = ["DEFAULT_EXACT_MAX_NODES", "DEFAULT_TIME_LIMIT_S", "ged_encoded", "graph_edit_distance"]

DEFAULT_EXACT_MAX_NODES = 12
DEFAULT_TIME_LIMIT_S = 2.0


def ged_encoded(
    e1: EncodedGraph,
    e2: EncodedGraph,
    n_edge_labels: int,
    costs: EditCosts,
    exact_max_nodes: int = DEFAULT_EXACT_MAX_NODES,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
) -> GedResult:
    """`graph_edit_distance` on graphs already encoded under one vocabulary
    (the distance-matrix workers call this to skip re-encoding)."""
    pd = oriented_pair(e1.labels, e1.adj, e2.labels, e2.adj, n_edge_labels, costs)
    if max(pd.n1, pd.n2) <= exact_max_nodes:
        deadline = None if time_limit_s is None else time.perf_counter() + max(0.0, float(time_limit_s))
        lower, upper, exact, _ = exact_core(pd, deadline)
    else:
        lower, upper, exact = bounds_core(pd)
    if exact:
        lower = upper
    return GedResult(lower=lower, upper=upper, exact=exact)


def graph_edit_distance(
    g1: nx.DiGraph,
    g2: nx.DiGraph,
    costs: EditCosts = DEFAULT_COSTS,
    exact_max_nodes: int = DEFAULT_EXACT_MAX_NODES,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
) -> GedResult:
    """GED between two job DAGs, choosing the algorithm by size.

    If both graphs have at most `exact_max_nodes` nodes, runs `exact_ged`
    with the anytime limit `time_limit_s` (None = no limit); otherwise runs
    `bounded_ged`.  Either way the result is a proven interval
    [lower, upper] and `exact` says whether it collapsed to a point.
    """
    e1, e2, k = encode_pair(g1, g2)
    return ged_encoded(e1, e2, k, costs, exact_max_nodes, time_limit_s)
