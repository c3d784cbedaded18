"""Front door for one pair: exact (anytime) GED for small graphs, polynomial
bounds for larger ones."""

from __future__ import annotations

import networkx as nx

from ._core import oriented_pair
from ._encode import EncodedGraph, encode_pair
from .bounds import bounds_core
from .budget import DEFAULT_MAX_EXPANSIONS, check_max_expansions
from .exact import exact_core
from .model import DEFAULT_COSTS, EditCosts, GedResult

__all__ = ["DEFAULT_EXACT_MAX_NODES", "DEFAULT_MAX_EXPANSIONS", "ged_encoded", "graph_edit_distance"]

DEFAULT_EXACT_MAX_NODES = 12


def ged_encoded(
    e1: EncodedGraph,
    e2: EncodedGraph,
    n_edge_labels: int,
    costs: EditCosts,
    exact_max_nodes: int = DEFAULT_EXACT_MAX_NODES,
    max_expansions: int | None = DEFAULT_MAX_EXPANSIONS,
) -> GedResult:
    """`graph_edit_distance` on graphs already encoded under one vocabulary
    (the distance-matrix workers call this to skip re-encoding)."""
    pd = oriented_pair(e1.labels, e1.adj, e2.labels, e2.adj, n_edge_labels, costs)
    if max(pd.n1, pd.n2) <= exact_max_nodes:
        lower, upper, exact, _ = exact_core(pd, max_expansions)
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
    max_expansions: int | None = DEFAULT_MAX_EXPANSIONS,
) -> GedResult:
    """GED between two job DAGs, choosing the algorithm by size.

    If both graphs have at most `exact_max_nodes` nodes, runs `exact_ged`
    with the search budget `max_expansions` (branch-and-bound node
    expansions; None = no limit); otherwise runs `bounded_ged`.  Either way
    the result is a proven interval [lower, upper], `exact` says whether it
    collapsed to a point, and the same input gives the same result on any
    machine.
    """
    max_expansions = check_max_expansions(max_expansions)
    e1, e2, k = encode_pair(g1, g2)
    return ged_encoded(e1, e2, k, costs, exact_max_nodes, max_expansions)
