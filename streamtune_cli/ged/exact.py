"""Exact graph edit distance by depth-first branch-and-bound with
assignment-based lower bounds; anytime when given a search budget (a
maximum number of node expansions, so the result never depends on the
machine's speed)."""

from __future__ import annotations

import networkx as nx
import numpy as np
from scipy.optimize import linear_sum_assignment

from ._core import PairData, ceil_if_integral, oriented_pair
from ._encode import encode_pair
from .bounds import initial_bounds
from .budget import check_max_expansions
from .model import DEFAULT_COSTS, EditCosts, GedResult

__all__ = ["exact_ged"]

_EPS = 1e-9
_MAX_DEPTH = 800


class _BudgetSpent(Exception):
    """Unwinds the search when its expansion budget is used up; carries the
    smallest lower bound among the subtrees that were still open, collected
    level by level."""

    def __init__(self, lower: float) -> None:
        super().__init__()
        self.lower = lower


def _branching_order(adj: np.ndarray) -> np.ndarray:
    """Order graph-1 nodes so each next node has as many edges as possible to
    already placed ones: those edges become exactly costed ("anchored") at
    once, which tightens the bounds high up in the tree.  Ties: higher
    degree, then lower index."""
    n = adj.shape[0]
    nz = (adj > 0) | (adj.T > 0)
    np.fill_diagonal(nz, False)
    nbrs = [np.flatnonzero(row).tolist() for row in nz]
    deg = [len(x) for x in nbrs]
    conn = [0] * n
    left = set(range(n))
    order = []
    for _ in range(n):
        pick = max(left, key=lambda i: (conn[i], deg[i], -i))
        order.append(pick)
        left.discard(pick)
        for j in nbrs[pick]:
            conn[j] += 1
    return np.asarray(order, dtype=np.int64)


class _Search:
    """Depth-first branch-and-bound over graph-1 nodes (in `_branching_order`),
    each mapped to an unused graph-2 node or deleted.

    A search state at depth k keeps, for the unprocessed rows order[k:] and
    the unused graph-2 columns P:
      anc[i, j]  exact cost of edges between row i / column j and the already
                 processed nodes (and self-loops) if i were mapped to j,
      ancd[i]    the same if row i were deleted, anci[j] if j were inserted,
      o2, to2    per-column label counts (and totals) of the "free" graph-2
                 edges, i.e. with both ends unused, out-edges and in-edges.
    Free edges enter the bound at half weight from each end (BRANCH), so the
    bound of a child is
        g + sum(deletions) + sum(insertions) + LSA(min(0, savings)).
    All children of a node are bounded in one batch of numpy operations
    (plus one small LSA each), then visited best-first.
    """

    def __init__(self, pd: PairData, upper: float, upper_map: np.ndarray, max_expansions: int | None) -> None:
        self.pd = pd
        self.max_expansions = max_expansions
        self.upper = upper
        order = _branching_order(pd.A1)
        self.order = order
        self.best_map = upper_map[order]  # positions follow the branching order
        self.integral = pd.integral
        self.expanded = 0
        ao = pd.A1[np.ix_(order, order)]
        self.ao = ao
        self.NSo = pd.NS[order]
        off = ao.copy()
        np.fill_diagonal(off, 0)
        oh1 = pd.OH[off]
        # Graph-1 side of the free-edge label counts depends on the depth
        # only: suffix sums give, for depth k, the out-counts of row i >= k
        # into rows >= k (so[k:, k]) and the in-counts (si[k, k:]).
        self.so = np.ascontiguousarray(oh1[:, ::-1].cumsum(axis=1)[:, ::-1])
        self.si = np.ascontiguousarray(oh1[::-1].cumsum(axis=0)[::-1])
        self.tso = self.so.sum(axis=-1)
        self.tsi = self.si.sum(axis=-1)
        self.edel_ao = pd.Edel[ao]
        self.loop1o = np.diagonal(ao).copy()
        self.img = np.full(pd.n1, pd.n2, dtype=np.int64)

    def _free1(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Label counts (2, n1-k, K) and totals (2, n1-k) of the free graph-1
        edges of rows order[k:]; axis 0 is direction (0 = out, 1 = in)."""
        return np.stack([self.so[k:, k], self.si[k, k:]]), np.stack([self.tso[k:, k], self.tsi[k, k:]])

    def _cd_base(self, tf1: np.ndarray) -> np.ndarray:
        return self.pd.cnd + 0.5 * self.pd.ced * tf1.sum(axis=0)

    # ------------------------------------------------------------------
    def root_state(self) -> tuple:
        pd = self.pd
        p_idx = np.arange(pd.n2, dtype=np.int64)
        anc = pd.E[self.loop1o[:, None], pd.loop2[None, :]]
        ancd = pd.Edel[self.loop1o]
        anci = pd.Eins[pd.loop2]
        o2 = np.stack([pd.out2, pd.in2])
        to2 = np.stack([pd.tout2, pd.tin2]).astype(float)
        return (p_idx, anc, ancd, anci, o2, to2, 0.0)

    def bound(self, k: int, state: tuple) -> float:
        """Lower bound for a single state (used at the root)."""
        pd = self.pd
        p_idx, anc, ancd, anci, o2, to2, g = state
        f1, tf1 = self._free1(k)
        m = pd.multiset_cost(f1[:, :, None, :], o2[:, None, :, :], tf1[:, :, None], to2[:, None, :]).sum(axis=0)
        cs = self.NSo[k:][:, p_idx] + anc + 0.5 * m
        cd = self._cd_base(tf1) + ancd
        ci = pd.cni + anci + 0.5 * pd.cei * to2.sum(axis=0)
        d = np.minimum(cs - cd[:, None] - ci[None, :], 0.0)
        lsa = 0.0
        if d.size:
            r, c = linear_sum_assignment(d)
            lsa = float(d[r, c].sum())
        return ceil_if_integral(g + cd.sum() + ci.sum() + lsa, self.integral)

    # ------------------------------------------------------------------
    def expand(self, k: int, state: tuple, lb_self: float) -> None:
        if self.max_expansions is not None and self.expanded >= self.max_expansions:
            raise _BudgetSpent(lb_self)
        self.expanded += 1
        pd = self.pd
        n1, n2 = pd.n1, pd.n2
        p_idx, anc, ancd, anci, o2, to2, g = state
        p = p_idx.shape[0]
        r1 = n1 - k - 1
        imgs = np.empty(p + 1, dtype=np.int64)  # candidate images; the last is epsilon
        imgs[:p] = p_idx
        imgs[p] = n2
        n_child = p + 1
        ar = np.arange(p)

        g_child = np.empty(n_child)
        g_child[:p] = g + self.NSo[k, p_idx] + anc[0]
        g_child[p] = g + pd.cnd + ancd[0]

        # labels of the edges between each unused column j and the child's
        # image v: bb[0, child, j] for j -> v, bb[1, child, j] for v -> j
        bb = np.stack([pd.A2x[p_idx[:, None], imgs[None, :]].T, pd.A2x[imgs[:, None], p_idx[None, :]]])
        anci2 = anci[None, :] + pd.Eins[bb].sum(axis=0)
        to2c = to2[:, None, :] - (bb > 0)
        ci = pd.cni + anci2 + 0.5 * pd.cei * to2c.sum(axis=0)
        ci[ar, ar] = 0.0  # the child's own image is no longer a column
        base = g_child + ci.sum(axis=1)

        integral = self.integral
        if r1 == 0:
            lbs = base
            terminal = np.ones(n_child, dtype=bool)
        else:
            ancd2 = ancd[1:] + self.edel_ao[k + 1 :, k] + self.edel_ao[k, k + 1 :]
            f1, tf1 = self._free1(k + 1)
            cd = self._cd_base(tf1) + ancd2
            base = base + cd.sum()
            terminal = np.zeros(n_child, dtype=bool)
            if p <= 1:
                # no column left for the children mapping to a node: only deletions remain
                terminal[:p] = True
            if p == 0:
                lbs = base.copy()
                terminal[:] = True
            else:
                a2 = np.stack([self.ao[k + 1 :, k], self.ao[k, k + 1 :]])  # edges rows -> k, k -> rows
                anc2 = anc[1:][None, :, :] + pd.E[a2[:, None, :, None], bb[:, :, None, :]].sum(axis=0)
                o2c = o2[:, None, :, :] - pd.OH[bb]
                m = pd.multiset_cost(f1[:, None, :, None, :], o2c[:, :, None, :, :], tf1[:, None, :, None], to2c[:, :, None, :]).sum(axis=0)
                cs = self.NSo[k + 1 :][:, p_idx][None, :, :] + anc2 + 0.5 * m
                d = np.minimum(cs - cd[None, :, None] - ci[:, None, :], 0.0)
                d[ar, :, ar] = 0.0
                # cheap relaxation first: each row (or column) takes its best saving
                cheap = base + np.maximum(d.min(axis=2).sum(axis=1), d.min(axis=1).sum(axis=1))
                lbs = cheap
                test = np.ceil(cheap - 1e-7) if integral else cheap
                for c in np.flatnonzero(~terminal & (test < self.upper - _EPS)).tolist():
                    dc = d[c]
                    r, cc = linear_sum_assignment(dc)
                    lbs[c] = base[c] + float(dc[r, cc].sum())
        if integral:
            lbs = np.ceil(lbs - 1e-7)

        # best-first: smallest bound, ties broken towards more realised cost
        visit = np.lexsort((-g_child, lbs))
        for pos, c in enumerate(visit.tolist()):
            lb = float(lbs[c])
            if lb >= self.upper - _EPS:
                break
            self.img[k] = imgs[c]
            if terminal[c]:
                # bound is exact here: the rest is forced (inserts / deletes)
                self.upper = lb
                self.best_map = self.img.copy()
                self.best_map[k + 1 :] = n2
                continue
            keep = ar != c
            child = (
                p_idx[keep],
                anc2[c][:, keep],
                ancd2,
                anci2[c][keep],
                o2c[:, c][:, keep],
                to2c[:, c][:, keep],
                float(g_child[c]),
            )
            try:
                self.expand(k + 1, child, lb)
            except _BudgetSpent as exc:
                rest = lbs[visit[pos + 1 :]]
                if rest.size:
                    exc.lower = min(exc.lower, float(rest.min()))
                raise
        self.img[k] = n2

    def mapping(self) -> np.ndarray:
        """Best mapping found, indexed by original graph-1 node."""
        f = np.empty(self.pd.n1, dtype=np.int64)
        f[self.order] = self.best_map
        return f


def _invert(f: np.ndarray, n_other: int) -> np.ndarray:
    """Mapping g2 -> g1 (length n2, n1 = epsilon) turned into g1 -> g2."""
    n2 = f.shape[0]
    inv = np.full(n_other, n2, dtype=np.int64)
    hit = f < n_other
    inv[f[hit]] = np.flatnonzero(hit)
    return inv


def exact_core(pd: PairData, max_expansions: int | None) -> tuple[float, float, bool, np.ndarray]:
    """Exact (or anytime) GED on prepared arrays: (lower, upper, exact, mapping).

    `max_expansions` caps the branch-and-bound node expansions (None = no
    cap); the same input and budget always give the same result.

    The search branches over the nodes of the smaller graph (fewer levels,
    and the bigger graph's spare nodes are settled by the bound), solving
    the reversed problem with swapped costs when g1 is the larger one.
    """
    if pd.n1 > pd.n2:
        lower, upper, exact, f = _exact_oriented(pd.swapped(), max_expansions)
        return lower, upper, exact, _invert(f, pd.n1)
    return _exact_oriented(pd, max_expansions)


def _exact_oriented(pd: PairData, max_expansions: int | None) -> tuple[float, float, bool, np.ndarray]:
    lower, upper, f = initial_bounds(pd)
    if lower >= upper - _EPS:
        return upper, upper, True, f
    if pd.n1 > _MAX_DEPTH:
        # one recursion level per node: far beyond any feasible exact search
        return lower, upper, False, f
    search = _Search(pd, upper, f, max_expansions)
    root = search.root_state()
    root_lb = max(lower, search.bound(0, root))
    if root_lb >= upper - _EPS:
        return upper, upper, True, f
    try:
        search.expand(0, root, root_lb)
    except _BudgetSpent as exc:
        best = search.upper
        lo = max(root_lb, min(exc.lower, best))
        lo = min(ceil_if_integral(lo, pd.integral), best)
        return lo, best, lo >= best - _EPS, search.mapping()
    return search.upper, search.upper, True, search.mapping()


def exact_ged(
    g1: nx.DiGraph,
    g2: nx.DiGraph,
    costs: EditCosts = DEFAULT_COSTS,
    max_expansions: int | None = None,
) -> GedResult:
    """Exact graph edit distance between two labeled DiGraphs.

    Node labels come from the `kind` attribute, edge labels from
    `partitioning` (missing = None); edges are directed.  The value is the
    true minimum edit-path cost, i.e. what
    ``networkx.graph_edit_distance(g1, g2, **networkx_cost_kwargs(costs))``
    returns (networkx itself can overshoot when node_sub >= node_del +
    node_ins, see docs/ged.md).

    With `max_expansions` (a search budget: branch-and-bound node
    expansions), the search stops once that many nodes have been expanded
    and returns the best edit path found (`upper`) with the best proven
    lower bound (`lower`); `exact` is True only if the optimum was proven.
    The budget counts work, not seconds, so the same input and budget give
    the same result on any machine.  With None the search runs to the end;
    its cost grows exponentially, so use a budget (or
    `graph_edit_distance`) for graphs beyond ~15 nodes.  Pairs whose
    smaller graph exceeds 800 nodes only get the polynomial bounds.
    """
    max_expansions = check_max_expansions(max_expansions)
    e1, e2, k = encode_pair(g1, g2)
    pd = oriented_pair(e1.labels, e1.adj, e2.labels, e2.adj, k, costs)
    lower, upper, exact, _ = exact_core(pd, max_expansions)
    if exact:
        lower = upper
    return GedResult(lower=lower, upper=upper, exact=exact)
