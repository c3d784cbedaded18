"""Numerical kernels shared by the GED solvers: per-pair cost tables, lower
bounds, the bipartite upper bound, exact costing of a node map, local search."""

# Conventions: graph 1 nodes are rows, graph 2 nodes are columns; a node map
# is an int array `f` of length n1 whose entries are graph-2 indices, or n2
# meaning "deleted" (epsilon).  Edge labels are ids >= 1, 0 = no edge.

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from .model import EditCosts

__all__ = ["PairData", "assignment_min", "ceil_if_integral", "oriented_pair"]

_EPS = 1e-9
REFINE_MAX_NODES = 40


def oriented_pair(labels1: np.ndarray, adj1: np.ndarray, labels2: np.ndarray, adj2: np.ndarray, n_edge_labels: int, costs: EditCosts) -> PairData:
    """PairData with the smaller graph as graph 1 (the exact search branches
    over graph-1 nodes); reversing the pair swaps deletion and insertion
    costs, which leaves the distance unchanged.  `.is_swapped` records it."""
    if labels1.shape[0] > labels2.shape[0]:
        pd = PairData(labels2, adj2, labels1, adj1, n_edge_labels, costs.swapped())
        pd.is_swapped = True
        return pd
    return PairData(labels1, adj1, labels2, adj2, n_edge_labels, costs)


def ceil_if_integral(x: float, integral: bool) -> float:
    """With integer costs every edit path costs an integer, so a fractional
    lower bound (the BRANCH bound halves edge costs) can be rounded up."""
    if integral:
        return float(math.ceil(x - 1e-7))
    return float(x)


def assignment_min(d: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Minimum-cost rectangular assignment of `d` (value, rows, cols)."""
    if d.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return 0.0, empty, empty
    rows, cols = linear_sum_assignment(d)
    return float(d[rows, cols].sum()), rows, cols


class PairData:
    """Cost tables for one ordered pair (g1 -> g2) under fixed `EditCosts`.

    Built once per pair; every bound and the exact search read from it.
    """

    def __init__(
        self,
        labels1: np.ndarray,
        adj1: np.ndarray,
        labels2: np.ndarray,
        adj2: np.ndarray,
        n_edge_labels: int,
        costs: EditCosts,
    ) -> None:
        self.costs = costs
        self.is_swapped = False
        self.integral = costs.is_integral
        self.n1 = n1 = int(labels1.shape[0])
        self.n2 = n2 = int(labels2.shape[0])
        self.k = k = int(n_edge_labels)
        self.cns = float(costs.node_sub)
        self.cnd = float(costs.node_del)
        self.cni = float(costs.node_ins)
        self.ced = float(costs.edge_del)
        self.cei = float(costs.edge_ins)
        # Two edges between mapped endpoints may also be deleted and
        # re-inserted, so a label change never costs more than del + ins.
        self.ces = min(float(costs.edge_sub), self.ced + self.cei)
        self.es_coef = self.ces - self.ced - self.cei

        e = np.full((k + 1, k + 1), self.ces)
        np.fill_diagonal(e, 0.0)
        e[1:, 0] = self.ced
        e[0, 1:] = self.cei
        e[0, 0] = 0.0
        self.E = e
        self.Edel = e[:, 0].copy()
        self.Eins = e[0, :].copy()

        self.labels1 = labels1
        self.labels2 = labels2
        self.A1 = adj1
        self.A2 = adj2
        a2x = np.zeros((n2 + 1, n2 + 1), dtype=np.int64)
        a2x[:n2, :n2] = adj2
        self.A2x = a2x  # row/col n2 stands for epsilon: no edges there
        self.NS = np.where(labels1[:, None] == labels2[None, :], 0.0, self.cns)
        self.NSx = np.concatenate([self.NS, np.full((n1, 1), self.cnd)], axis=1)

        oh = np.zeros((k + 1, k))
        oh[1:, :] = np.eye(k)
        self.OH = oh  # one-hot of an edge label id; the "no edge" row is all zero
        self.loop1 = np.diagonal(adj1).copy()
        self.loop2 = np.diagonal(adj2).copy()
        off1 = adj1.copy()
        np.fill_diagonal(off1, 0)
        off2 = adj2.copy()
        np.fill_diagonal(off2, 0)
        self.off1 = off1
        oh1 = oh[off1]
        oh2 = oh[off2]
        self.out1 = oh1.sum(axis=1)
        self.in1 = oh1.sum(axis=0)
        self.out2 = oh2.sum(axis=1)
        self.in2 = oh2.sum(axis=0)
        self.tout1 = self.out1.sum(axis=-1)
        self.tin1 = self.in1.sum(axis=-1)
        self.tout2 = self.out2.sum(axis=-1)
        self.tin2 = self.in2.sum(axis=-1)
        self.m1 = int(np.count_nonzero(adj1))
        self.m2 = int(np.count_nonzero(adj2))
        self._local: np.ndarray | None = None

    def swapped(self) -> PairData:
        """The reversed problem g2 -> g1 (deletions and insertions trade places)."""
        return PairData(self.labels2, self.A2, self.labels1, self.A1, self.k, self.costs.swapped())

    # ------------------------------------------------------------------ costs
    def multiset_cost(self, a: np.ndarray, b: np.ndarray, ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
        """Cheapest way to turn edge-label multiset `a` into `b` (counts on the
        last axis, totals `ta`/`tb`): equal labels match for free, the rest
        are substituted pairwise or deleted/inserted."""
        common = np.minimum(a, b).sum(axis=-1)
        ra = ta - common
        rb = tb - common
        return self.es_coef * np.minimum(ra, rb) + self.ced * ra + self.cei * rb

    def mapping_costs(self, f: np.ndarray) -> np.ndarray:
        """Exact edit-path cost of each mapping in `f` (shape (M, n1) or (n1,)).

        Edges follow the nodes: (u, v) is substituted by (f(u), f(v)) when
        that edge exists, otherwise deleted; graph-2 edges not hit are inserted.
        """
        single = f.ndim == 1
        ff = f[None, :] if single else f
        n1 = self.n1
        node = self.NSx[np.arange(n1)[None, :], ff].sum(axis=1) + self.cni * (self.n2 - (ff < self.n2).sum(axis=1))
        b = self.A2x[ff[:, :, None], ff[:, None, :]]
        edge = self.E[self.A1[None, :, :], b].sum(axis=(1, 2)) + self.cei * (self.m2 - np.count_nonzero(b, axis=(1, 2)))
        out = node + edge
        return out[0:1] if single else out

    def mapping_cost(self, f: np.ndarray) -> float:
        return float(self.mapping_costs(np.asarray(f, dtype=np.int64))[0])

    # ----------------------------------------------------------------- bounds
    def label_multiset_bound(self) -> float:
        """max(|A|,|B|) - |A cap B| style bound on node and edge label
        multisets, weighted by the costs (structure ignored)."""
        n_lab = int(max(self.labels1.max(initial=-1), self.labels2.max(initial=-1))) + 1
        c1 = np.bincount(self.labels1, minlength=n_lab)
        c2 = np.bincount(self.labels2, minlength=n_lab)
        common = int(np.minimum(c1, c2).sum())
        ra, rb = self.n1 - common, self.n2 - common
        s = min(ra, rb)
        node = min(self.cns, self.cnd + self.cni) * s + self.cnd * (ra - s) + self.cni * (rb - s)
        e1 = np.bincount(self.A1.ravel(), minlength=self.k + 1)[1:]
        e2 = np.bincount(self.A2.ravel(), minlength=self.k + 1)[1:]
        edge = float(self.multiset_cost(e1, e2, np.int64(self.m1), np.int64(self.m2)))
        return float(node + edge)

    def _local_edges(self) -> np.ndarray:
        """(n1, n2): optimal cost of matching the incident edge labels of u
        with those of v, out-edges with out-edges and in with in."""
        if self._local is None:
            a = np.stack([self.out1, self.in1])[:, :, None, :]
            b = np.stack([self.out2, self.in2])[:, None, :, :]
            ta = np.stack([self.tout1, self.tin1])[:, :, None]
            tb = np.stack([self.tout2, self.tin2])[:, None, :]
            self._local = self.multiset_cost(a, b, ta, tb).sum(axis=0)
        return self._local

    def branch_bound(self) -> tuple[float, np.ndarray]:
        """BRANCH lower bound (Blumenthal & Gamper): each node pair pays its
        label cost plus half the optimal matching cost of its incident edge
        labels (split by direction); solved as an assignment problem.

        Returns the bound and the mapping the assignment suggests.
        """
        cs = self.NS + self.E[self.loop1[:, None], self.loop2[None, :]] + 0.5 * self._local_edges()
        cd = self.cnd + self.Edel[self.loop1] + 0.5 * self.ced * (self.tout1 + self.tin1)
        ci = self.cni + self.Eins[self.loop2] + 0.5 * self.cei * (self.tout2 + self.tin2)
        return self._solve_split(cs, cd, ci)

    def bipartite_mapping(self) -> np.ndarray:
        """Riesen & Bunke bipartite heuristic: node costs plus the full optimal
        cost of matching incident edges, solved as one assignment problem."""
        cs = self.NS + self.E[self.loop1[:, None], self.loop2[None, :]] + self._local_edges()
        cd = self.cnd + self.Edel[self.loop1] + self.ced * (self.tout1 + self.tin1)
        ci = self.cni + self.Eins[self.loop2] + self.cei * (self.tout2 + self.tin2)
        return self._solve_split(cs, cd, ci)[1]

    def _solve_split(self, cs: np.ndarray, cd: np.ndarray, ci: np.ndarray) -> tuple[float, np.ndarray]:
        """Solve the (n1+n2)^2 substitution/deletion/insertion assignment in
        its equivalent n1 x n2 form: pairing u with v saves
        cd[u] + ci[v] - cs[u, v], and a pair that saves nothing is as good
        as leaving both unmatched, hence the clip at 0."""
        raw = cs - cd[:, None] - ci[None, :]
        value, rows, cols = assignment_min(np.minimum(raw, 0.0))
        f = np.full(self.n1, self.n2, dtype=np.int64)
        keep = raw[rows, cols] <= _EPS
        f[rows[keep]] = cols[keep]
        return float(cd.sum() + ci.sum() + value), f

    # ----------------------------------------------------------- local search
    def refine(self, f: np.ndarray, cost: float, max_rounds: int = 50) -> tuple[np.ndarray, float]:
        """Best-improvement local search over swaps of two images and moves
        of one node to a free graph-2 node or to epsilon, for at most
        `max_rounds` rounds (a fixed amount of work: no clock involved)."""
        n1, n2 = self.n1, self.n2
        if n1 == 0 or n1 > REFINE_MAX_NODES:
            # each round costs O(n^4) work; beyond this size the plain
            # bipartite path is kept
            return f, cost
        if n1 > 16:
            max_rounds = min(max_rounds, 10)
        iu, ju = np.triu_indices(n1, 1)
        for _ in range(max_rounds):
            free = np.setdiff1d(np.arange(n2 + 1), f[f < n2])  # includes epsilon (n2)
            n_swap = iu.shape[0]
            n_move = n1 * free.shape[0]
            cand = np.repeat(f[None, :], n_swap + n_move, axis=0)
            rs = np.arange(n_swap)
            cand[rs, iu] = f[ju]
            cand[rs, ju] = f[iu]
            mu = np.repeat(np.arange(n1), free.shape[0])
            mv = np.tile(free, n1)
            cand[n_swap + np.arange(n_move), mu] = mv
            step = max(1, 2_000_000 // max(1, n1 * n1))
            costs = np.concatenate([self.mapping_costs(cand[i : i + step]) for i in range(0, cand.shape[0], step)])
            best = int(np.argmin(costs))
            if costs[best] < cost - _EPS:
                f = cand[best].copy()
                cost = float(costs[best])
            else:
                break
        return f, cost
