"""Clustering of job DAGs from a GED matrix (average-linkage agglomerative,
k picked by silhouette) and nearest-medoid assignment of new graphs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx
import numpy as np

from .bounds import bounded_ged
from .budget import DEFAULT_MAX_EXPANSIONS, check_max_expansions
from .distance import DEFAULT_EXACT_MAX_NODES, graph_edit_distance
from .matrix import DistanceMatrix
from .model import DEFAULT_COSTS, EditCosts

__all__ = ["Clustering", "assign_to_medoid", "cluster_distance_matrix"]

# silhouette on a sample beyond this many points (O(n^2) otherwise)
_SILHOUETTE_MAX_N = 5000


@dataclass(frozen=True, eq=False)
class Clustering:
    """Result of `cluster_distance_matrix`.

    labels[i]   cluster of input row i, in 0..k-1; clusters are numbered by
                decreasing size (ties: smallest member index first).
    k           number of clusters.
    silhouette  mean silhouette of the chosen clustering (nan when undefined:
                k == 1 or k == number of points); for a `DistanceMatrix`
                input it is taken over the distinct graphs.
    medoids[c]  row index of cluster c's medoid: the member with the smallest
                sum of distances to the other members of c.
    scores      silhouette of every k tried when k="auto" (else empty).
    """

    labels: np.ndarray
    k: int
    silhouette: float
    medoids: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)

    def members(self, cluster: int) -> np.ndarray:
        """Row indices of the members of `cluster`."""
        return np.flatnonzero(self.labels == cluster)

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k)


def _as_matrix(d: np.ndarray) -> np.ndarray:
    m = np.asarray(d, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"distance matrix must be square, got shape {m.shape}")
    if not np.all(np.isfinite(m)) or (m < 0).any():
        raise ValueError("distance matrix must be finite and non-negative")
    # GED under asymmetric costs is not symmetric; average linkage and the
    # silhouette need a symmetric dissimilarity, so use the mean of both ways
    m = 0.5 * (m + m.T)
    np.fill_diagonal(m, 0.0)
    return m


def _fit(m: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return np.zeros(m.shape[0], dtype=np.int64)
    # sklearn is imported here, not at the top: assigning a job to a medoid must not pay its import.
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average")
    return model.fit_predict(m).astype(np.int64)


def _silhouette(m: np.ndarray, labels: np.ndarray, seed: int) -> float:
    n = m.shape[0]
    n_lab = len(np.unique(labels))
    if n_lab < 2 or n_lab > n - 1:
        return math.nan
    from sklearn.metrics import silhouette_score

    if n > _SILHOUETTE_MAX_N:
        return float(silhouette_score(m, labels, metric="precomputed", sample_size=_SILHOUETTE_MAX_N, random_state=seed))
    return float(silhouette_score(m, labels, metric="precomputed"))


def _canonical_labels(labels: np.ndarray) -> np.ndarray:
    # stable numbering so reports do not depend on sklearn's internal order
    ids, first, counts = np.unique(labels, return_index=True, return_counts=True)
    ranked = sorted(range(len(ids)), key=lambda t: (-counts[t], first[t]))
    remap = np.empty(ids.max() + 1 if len(ids) else 0, dtype=np.int64)
    for new, t in enumerate(ranked):
        remap[ids[t]] = new
    return remap[labels]


def _medoids(m: np.ndarray, labels: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    out = np.empty(k, dtype=np.int64)
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        sums = m[np.ix_(idx, idx)] @ weights[idx]
        out[c] = idx[int(np.argmin(sums))]  # argmin: ties go to the smallest index
    return out


def _cluster(m: np.ndarray, weights: np.ndarray | None, k: int | str, k_range: tuple[int, int], seed: int) -> Clustering:
    n = m.shape[0]
    if n == 0:
        raise ValueError("cannot cluster an empty distance matrix")
    scores: dict[int, float] = {}
    if k == "auto":
        lo, hi = int(k_range[0]), int(k_range[1])
        if lo < 2 or hi < lo:
            raise ValueError(f"k_range must satisfy 2 <= low <= high, got {k_range}")
        chosen, best = 1, -math.inf
        for kk in range(lo, min(hi, n - 1) + 1):
            s = _silhouette(m, _fit(m, kk), seed)
            scores[kk] = s
            if not math.isnan(s) and s > best + 1e-12:
                chosen, best = kk, s
    elif isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= int(k) <= n:
        chosen = int(k)
    else:
        raise ValueError(f'k must be "auto" or an integer in 1..{n}, got {k!r}')

    labels = _canonical_labels(_fit(m, chosen))
    chosen = int(labels.max()) + 1
    w = np.ones(n) if weights is None else weights.astype(float)
    return Clustering(
        labels=labels,
        k=chosen,
        silhouette=_silhouette(m, labels, seed),
        medoids=_medoids(m, labels, chosen, w),
        scores=scores,
    )


def cluster_distance_matrix(
    D: DistanceMatrix | np.ndarray,
    k: int | Literal["auto"] = "auto",
    k_range: tuple[int, int] = (2, 12),
    seed: int = 0,
) -> Clustering:
    """Cluster graphs from their pairwise distances.

    D: an n x n distance array, or a `DistanceMatrix` (its `upper`, i.e.
       best-known, distances are used).  An asymmetric array (GED under
       asymmetric costs) is symmetrised as (D + D.T) / 2.
    k: a fixed number of clusters (1..m, where m is the number of rows, or
       of distinct graphs for a `DistanceMatrix`), or "auto" to try every k
       in `k_range` (inclusive, capped at m-1) and keep the best silhouette
       (ties: smaller k).  With m < 3, "auto" gives a single cluster.
    seed: random state for silhouette sampling on very large dense inputs
       (agglomerative clustering itself is deterministic).

    Uses sklearn AgglomerativeClustering(metric="precomputed",
    linkage="average") and silhouette_score(metric="precomputed").

    For a `DistanceMatrix` the clustering is over distinct structures: the
    linkage and the silhouette (hence the choice of k) see each distinct
    graph once, so thousands of copies of one job shape neither drown the
    rarer shapes nor push "auto" towards one cluster per shape (silhouette
    rewards isolating exact duplicates).  Labels are then spread to all n
    inputs.  Medoids do count duplicates: a medoid minimises the sum of
    distances to every input in its cluster, and is reported as an input
    index (the first occurrence of that graph).
    """
    if isinstance(D, DistanceMatrix):
        if D.n == 0:
            raise ValueError("cannot cluster an empty distance matrix")
        inner = _cluster(_as_matrix(D.unique_upper), D.multiplicity, k, k_range, seed)
        return Clustering(
            labels=inner.labels[D.index_map],
            k=inner.k,
            silhouette=inner.silhouette,
            medoids=D.representatives[inner.medoids],
            scores=inner.scores,
        )
    return _cluster(_as_matrix(D), None, k, k_range, seed)


def assign_to_medoid(
    g: nx.DiGraph,
    medoid_graphs: Sequence[nx.DiGraph],
    costs: EditCosts = DEFAULT_COSTS,
    exact_max_nodes: int = DEFAULT_EXACT_MAX_NODES,
    max_expansions: int | None = DEFAULT_MAX_EXPANSIONS,
) -> tuple[int, float]:
    """Nearest medoid of `g`: returns (cluster index, distance).

    Distances are `graph_edit_distance(g, medoid)` values (best known edit
    path cost, exact search with the budget `max_expansions` per medoid);
    ties go to the lower index.  Cheap bounds are computed first
    so medoids that provably cannot win are never searched exactly.
    """
    if not medoid_graphs:
        raise ValueError("need at least one medoid graph")
    max_expansions = check_max_expansions(max_expansions)
    quick = [bounded_ged(g, m, costs) for m in medoid_graphs]
    best_idx, best_val = -1, math.inf
    # visit the most promising medoids first so the pruning bites early
    for i in sorted(range(len(quick)), key=lambda t: (quick[t].upper, quick[t].lower, t)):
        q = quick[i]
        if q.lower > best_val or (q.lower == best_val and i > best_idx):
            continue
        val = q.upper if q.exact else graph_edit_distance(g, medoid_graphs[i], costs, exact_max_nodes, max_expansions).value
        if val < best_val or (val == best_val and i < best_idx):
            best_idx, best_val = i, val
    return best_idx, float(best_val)
