"""All-pairs GED matrices over many job DAGs: deduplicate, then compute the
distinct pairs in chunks on a process pool, reporting progress."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ._encode import EncodedGraph, encode_many
from .budget import DEFAULT_PAIR_MAX_EXPANSIONS, check_max_expansions
from .canonical import dedupe
from .distance import DEFAULT_EXACT_MAX_NODES, ged_encoded
from .model import DEFAULT_COSTS, EditCosts

__all__ = ["DEFAULT_PAIR_MAX_EXPANSIONS", "DistanceMatrix", "ProgressCallback", "distance_matrix"]

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class DistanceMatrix:
    """Pairwise GED intervals for `n` input graphs, stored once per distinct graph.

    `unique_lower[a, b]` / `unique_upper[a, b]` bound GED(distinct a ->
    distinct b) and `unique_exact[a, b]` says the bound is tight; input graph
    i is distinct graph `index_map[i]`, and `representatives[a]` is the input
    index of the first graph of class a.  The n x n views `lower`, `upper`,
    `exact` and `value` are materialised on access (n^2 memory: for tens of
    thousands of graphs work on the `unique_*` arrays instead).
    Symmetric whenever the costs are (`EditCosts.is_symmetric`).
    """

    unique_lower: np.ndarray
    unique_upper: np.ndarray
    unique_exact: np.ndarray
    index_map: np.ndarray
    representatives: np.ndarray

    @property
    def n(self) -> int:
        return int(self.index_map.shape[0])

    @property
    def n_unique(self) -> int:
        return int(self.representatives.shape[0])

    def _expand(self, a: np.ndarray) -> np.ndarray:
        return a[np.ix_(self.index_map, self.index_map)]

    @property
    def lower(self) -> np.ndarray:
        return self._expand(self.unique_lower)

    @property
    def upper(self) -> np.ndarray:
        return self._expand(self.unique_upper)

    @property
    def exact(self) -> np.ndarray:
        return self._expand(self.unique_exact)

    @property
    def value(self) -> np.ndarray:
        """Best known distances (the `upper` matrix)."""
        return self.upper

    @property
    def all_exact(self) -> bool:
        return bool(self.unique_exact.all())

    @property
    def multiplicity(self) -> np.ndarray:
        """How many input graphs each distinct graph stands for."""
        return np.bincount(self.index_map, minlength=self.n_unique)


# --------------------------------------------------------------- workers
_WORKER: dict[str, object] = {}


def _init_worker(encoded: list[EncodedGraph], n_edge_labels: int, costs: EditCosts, exact_max_nodes: int, max_expansions: int | None) -> None:
    _WORKER.update(encoded=encoded, k=n_edge_labels, costs=costs, emn=exact_max_nodes, budget=max_expansions)


def _run_chunk(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    encoded: list[EncodedGraph] = _WORKER["encoded"]  # type: ignore[assignment]
    lo = np.empty(rows.shape[0])
    up = np.empty(rows.shape[0])
    ex = np.empty(rows.shape[0], dtype=bool)
    for t, (a, b) in enumerate(zip(rows.tolist(), cols.tolist())):
        r = ged_encoded(encoded[a], encoded[b], _WORKER["k"], _WORKER["costs"], _WORKER["emn"], _WORKER["budget"])  # type: ignore[arg-type]
        lo[t], up[t], ex[t] = r.lower, r.upper, r.exact
    return rows, cols, lo, up, ex


def distance_matrix(
    graphs: Sequence[nx.DiGraph],
    costs: EditCosts = DEFAULT_COSTS,
    n_jobs: int | None = None,
    progress: ProgressCallback | None = None,
    max_expansions: int | None = DEFAULT_PAIR_MAX_EXPANSIONS,
    exact_max_nodes: int = DEFAULT_EXACT_MAX_NODES,
    chunk_size: int | None = None,
) -> DistanceMatrix:
    """GED between every pair of `graphs`.

    Identical graphs (isomorphic with equal labels) are merged first by
    `dedupe`, so only distinct pairs are computed; each pair goes through
    `graph_edit_distance` (exact with the search budget `max_expansions`,
    branch-and-bound node expansions per pair, when both graphs have <=
    `exact_max_nodes` nodes; bounds otherwise).  A pair that uses up its
    budget keeps its proven interval and is not marked exact.

    n_jobs: worker processes (default and cap: `os.cpu_count()`); 1 computes
        in this process.  Results depend neither on n_jobs nor on the
        machine's speed or load: the budget counts work, not seconds.
    progress: optional `progress(done, total)` called with the number of
        distinct pairs finished so far (first with done=0), e.g. to drive a
        rich progress bar.
    """
    max_expansions = check_max_expansions(max_expansions)
    unique, index_map_list = dedupe(graphs)
    index_map = np.asarray(index_map_list, dtype=np.int64)
    u = len(unique)
    first_seen: dict[int, int] = {}
    for i, a in enumerate(index_map_list):
        first_seen.setdefault(a, i)
    representatives = np.asarray([first_seen[a] for a in range(u)], dtype=np.int64)

    lower = np.zeros((u, u))
    upper = np.zeros((u, u))
    exact = np.ones((u, u), dtype=bool)
    if costs.is_symmetric:
        rows, cols = np.triu_indices(u, 1)
    else:
        # GED(a, b) != GED(b, a) when deletions and insertions cost differently
        rows, cols = np.nonzero(~np.eye(u, dtype=bool))
    total = int(rows.shape[0])
    if progress is not None:
        progress(0, total)
    if total == 0:
        return DistanceMatrix(lower, upper, exact, index_map, representatives)

    encoded, k = encode_many(unique)
    # More processes than cores only compete for them (and `--workers 100000` must not fork 100000).
    cores = os.cpu_count() or 1
    workers = max(1, min(int(n_jobs if n_jobs is not None else cores), cores))

    def store(res: tuple[np.ndarray, ...]) -> int:
        r, c, lo, up, ex = res
        lower[r, c], upper[r, c], exact[r, c] = lo, up, ex
        if costs.is_symmetric:
            lower[c, r], upper[c, r], exact[c, r] = lo, up, ex
        return int(r.shape[0])

    if chunk_size is None:
        # ~16 chunks per worker keeps the pool busy near the end and the
        # progress bar moving, without paying per-pair IPC
        chunk_size = max(1, min(2000, math.ceil(total / (workers * 16))))
    n_chunks = math.ceil(total / chunk_size)
    # strided chunks spread large and small graphs evenly over the chunks
    chunks = [(rows[s::n_chunks], cols[s::n_chunks]) for s in range(n_chunks)]

    done = 0
    if workers == 1:
        _init_worker(encoded, k, costs, exact_max_nodes, max_expansions)
        try:
            for r, c in chunks:
                done += store(_run_chunk(r, c))
                if progress is not None:
                    progress(done, total)
        finally:
            _WORKER.clear()
    else:
        with ProcessPoolExecutor(
            max_workers=min(workers, n_chunks),
            initializer=_init_worker,
            initargs=(encoded, k, costs, exact_max_nodes, max_expansions),
        ) as pool:
            pending = {pool.submit(_run_chunk, r, c) for r, c in chunks}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done += store(fut.result())
                    if progress is not None:
                        progress(done, total)
    return DistanceMatrix(lower, upper, exact, index_map, representatives)
