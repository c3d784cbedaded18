"""Isomorphism-invariant hashing of labeled job DAGs and exact deduplication
(hash buckets verified with a labeled isomorphism test)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import networkx as nx

from .model import (
    EDGE_LABEL_ATTR,
    NODE_LABEL_ATTR,
    _check_graph,
    edge_label,
    node_label,
)

__all__ = ["canonical_hash", "dedupe", "same_labeled_graph"]

_WL_ITERATIONS = 4
# colour-guided isomorphism search gives up (and defers to VF2) after this
# many candidate checks; only highly symmetric graphs get near it
_ISO_BUDGET = 20_000


def _node_match(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return node_label(a) == node_label(b)


def _edge_match(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return edge_label(a) == edge_label(b)


def same_labeled_graph(g1: nx.DiGraph, g2: nx.DiGraph) -> bool:
    """True iff g1 and g2 are isomorphic with equal node and edge labels
    (equivalently: their GED is 0 under strictly positive costs).
    Uses networkx VF2 (`networkx.is_isomorphic` with label matches)."""
    if g1.number_of_nodes() != g2.number_of_nodes() or g1.number_of_edges() != g2.number_of_edges():
        return False
    return nx.is_isomorphic(g1, g2, node_match=_node_match, edge_match=_edge_match)


# ------------------------------------------------------------ WL refinement
def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _refine(g: nx.DiGraph, iterations: int, colour_of: Callable[[Any], Any]) -> tuple[dict[Hashable, Any], list[list[Any]], list[str]]:
    """Weisfeiler-Lehman refinement for directed, edge-labeled graphs.

    Round 0 colours a node by its label; each round a node's new colour is
    `colour_of((colour, sorted out (edge label, colour)), sorted in (...)))`.
    Returns the final colours, the sorted colour list of every round and the
    sorted edge labels; all of it is invariant under isomorphism.
    """
    e_lab = {}
    for u, nbrs in g.adjacency():
        for v, d in nbrs.items():
            e_lab[u, v] = repr(d.get(EDGE_LABEL_ATTR))
    colour = {n: colour_of(repr(lab)) for n, lab in g.nodes(data=NODE_LABEL_ATTR)}
    rounds = [sorted(colour.values())]
    succ, pred = g.succ, g.pred
    for _ in range(iterations):
        colour = {
            n: colour_of(
                (
                    colour[n],
                    tuple(sorted((e_lab[n, w], colour[w]) for w in succ[n])),
                    tuple(sorted((e_lab[w, n], colour[w]) for w in pred[n])),
                )
            )
            for n in colour
        }
        rounds.append(sorted(colour.values()))
    return colour, rounds, sorted(e_lab.values())


def canonical_hash(g: nx.DiGraph, iterations: int = _WL_ITERATIONS) -> str:
    """Hex digest equal for isomorphic graphs with equal labels.

    Weisfeiler-Lehman refinement for directed, edge-labeled graphs: each
    round a node's colour becomes a digest of its colour, the sorted
    (edge label, colour) pairs of its out-edges and, separately, of its
    in-edges.  The digest covers the node/edge counts, the edge-label
    histogram and the colour histograms of every round (`iterations`
    rounds after round 0 = node labels).  Implemented here rather than with
    networkx's WL hash because that one changed its output for directed
    graphs in networkx 3.5; ours stays stable across versions and
    processes.  Labels enter through their repr (strings in practice).
    Different graphs can in principle collide, which is why `dedupe`
    verifies isomorphism inside each hash bucket.
    """
    _check_graph(g)
    _, rounds, edges = _refine(g, iterations, lambda sig: _digest(repr(sig)))
    return _digest(repr((g.number_of_nodes(), g.number_of_edges(), edges, rounds)))


# ------------------------------------------------------- isomorphism check
class _Shape:
    """Adjacency of one graph as plain dicts (label per neighbour), node
    labels, and WL colour classes, for the colour-guided search."""

    __slots__ = ("classes", "colour", "inn", "label", "out")

    def __init__(self, g: nx.DiGraph, colour: dict[Hashable, Any]) -> None:
        self.out: dict[Hashable, dict[Hashable, Any]] = {}
        self.inn: dict[Hashable, dict[Hashable, Any]] = {n: {} for n in g}
        for u, nbrs in g.adjacency():
            row = {v: d.get(EDGE_LABEL_ATTR) for v, d in nbrs.items()}
            self.out[u] = row
            for v, lab in row.items():
                self.inn[v][u] = lab
        self.label = dict(g.nodes(data=NODE_LABEL_ATTR))
        self.colour = colour
        self.classes: dict[Any, list[Hashable]] = {}
        for n, c in colour.items():
            self.classes.setdefault(c, []).append(n)


def _colour_isomorphic(a: _Shape, b: _Shape) -> bool | None:
    """Search an isomorphism a -> b that maps each node into its own WL
    colour class (every isomorphism does), checking labels and all edges
    between mapped nodes.  True = found and verified; False = none exists
    under these colours; None = budget exhausted."""
    if len(a.label) != len(b.label) or any(len(v) != len(b.classes.get(c, ())) for c, v in a.classes.items()):
        return False
    if len(a.label) > 500:  # keep the recursion shallow; VF2 handles big graphs
        return None
    # most constrained first: small colour classes, then nodes adjacent to
    # already-placed ones
    order: list[Hashable] = []
    placed: set[Hashable] = set()
    pending = sorted(a.label, key=lambda n: len(a.classes[a.colour[n]]))
    while pending:
        best = max(pending, key=lambda n: (sum(1 for w in a.out[n] if w in placed) + sum(1 for w in a.inn[n] if w in placed), -len(a.classes[a.colour[n]])))
        pending.remove(best)
        order.append(best)
        placed.add(best)
    f: dict[Hashable, Hashable] = {}
    used: set[Hashable] = set()
    budget = [_ISO_BUDGET]

    def consistent(u: Hashable, v: Hashable) -> bool:
        if a.label[u] != b.label[v]:
            return False
        # edges to mapped nodes must correspond one to one with equal labels
        n_out = n_in = 0
        for w, lab in a.out[u].items():
            if w in f:
                fw = f[w]
                if fw not in b.out[v] or b.out[v][fw] != lab:
                    return False
                n_out += 1
            elif w == u:  # self-loop
                if v not in b.out[v] or b.out[v][v] != lab:
                    return False
                n_out += 1
        for w, lab in a.inn[u].items():
            if w in f:
                fw = f[w]
                if fw not in b.inn[v] or b.inn[v][fw] != lab:
                    return False
                n_in += 1
        m_out = sum(1 for x in b.out[v] if x in used or x == v)
        m_in = sum(1 for x in b.inn[v] if x in used)
        return n_out == m_out and n_in == m_in

    def place(i: int) -> bool | None:
        if i == len(order):
            return True
        u = order[i]
        for v in b.classes[a.colour[u]]:
            if v in used:
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return None
            if not consistent(u, v):
                continue
            f[u] = v
            used.add(v)
            res = place(i + 1)
            if res is not False:
                return res
            del f[u]
            used.discard(v)
        return False

    return place(0)


# ---------------------------------------------------------------- dedupe
def _exact_key(g: nx.DiGraph) -> Hashable:
    # Same node ids, labels and edges => same graph; lets the (common) case of
    # literal copies skip hashing and isomorphism tests entirely.
    return (
        frozenset(g.nodes(data=NODE_LABEL_ATTR)),
        frozenset((u, v, d.get(EDGE_LABEL_ATTR)) for u, nbrs in g.adjacency() for v, d in nbrs.items()),
    )


def _wl_key(g: nx.DiGraph, intern: dict[Any, int]) -> tuple[Hashable, dict[Hashable, int]]:
    """Bucket key and final colours from the same refinement as
    `canonical_hash`, with colours interned to small ints shared by one
    dedupe call instead of digested (same information, much cheaper)."""
    colour, rounds, edges = _refine(g, _WL_ITERATIONS, lambda sig: intern.setdefault(sig, len(intern)))
    return (g.number_of_nodes(), g.number_of_edges(), tuple(edges), tuple(tuple(r) for r in rounds)), colour


def dedupe(graphs: Sequence[nx.DiGraph]) -> tuple[list[nx.DiGraph], list[int]]:
    """Group identical labeled graphs (up to isomorphism).

    Returns `(unique_graphs, index_map)` where `unique_graphs` keeps the
    first occurrence of each class in input order and `graphs[i]` is
    isomorphic (labels included) to `unique_graphs[index_map[i]]`.

    Graphs are bucketed by their Weisfeiler-Lehman key (the refinement
    behind `canonical_hash`) and only merged once an explicit isomorphism
    has been verified: a search constrained to WL colour classes finds and
    checks it, and networkx's VF2 (`same_labeled_graph`) decides whenever
    that search does not succeed.  A hash collision can therefore never
    merge two different graphs.
    """
    unique: list[nx.DiGraph] = []
    shapes: list[_Shape] = []
    index_map: list[int] = []
    by_key: dict[Hashable, int] = {}
    buckets: dict[Hashable, list[int]] = {}
    intern: dict[Any, int] = {}
    for g in graphs:
        _check_graph(g)
        try:
            key: Hashable | None = _exact_key(g)
            hit = by_key.get(key)
        except TypeError:  # unhashable node ids or labels: rely on hashing
            key, hit = None, None
        if hit is None:
            wl, colour = _wl_key(g, intern)
            bucket = buckets.setdefault(wl, [])
            shape = _Shape(g, colour)
            hit = next((u for u in bucket if _colour_isomorphic(shape, shapes[u]) or same_labeled_graph(g, unique[u])), None)
            if hit is None:
                hit = len(unique)
                unique.append(g)
                shapes.append(shape)
                bucket.append(hit)
            if key is not None:
                by_key[key] = hit
        index_map.append(hit)
    return unique, index_map
