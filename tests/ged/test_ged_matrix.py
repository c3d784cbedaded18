"""distance_matrix: agreement with pairwise GED, symmetry, dedupe, progress
reporting and independence from the number of worker processes."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pytest
from ged_graphgen import FAMILIES, make_dag, relabel_randomly

from streamtune_cli.ged import (
    DistanceMatrix,
    EditCosts,
    dedupe,
    distance_matrix,
    graph_edit_distance,
)


def _graphs(seed: int, per_family: int = 3) -> list[nx.DiGraph]:
    rng = random.Random(seed)
    graphs = [f(rng) for f in FAMILIES for _ in range(per_family)]
    graphs.append(make_dag(["source", "sink"], [(0, 1, "forward")]))
    graphs.append(nx.DiGraph())
    # duplicates under other node ids
    graphs += [relabel_randomly(graphs[0], rng), relabel_randomly(graphs[4], rng)]
    return graphs


@pytest.fixture(scope="module")
def graphs() -> list[nx.DiGraph]:
    return _graphs(1)


@pytest.fixture(scope="module")
def serial(graphs: list[nx.DiGraph]) -> DistanceMatrix:
    return distance_matrix(graphs, n_jobs=1, max_expansions=None)


def test_matches_pairwise_ged(graphs: list[nx.DiGraph], serial: DistanceMatrix) -> None:
    n = len(graphs)
    assert serial.upper.shape == serial.lower.shape == serial.exact.shape == (n, n)
    for i in range(n):
        for j in range(n):
            r = graph_edit_distance(graphs[i], graphs[j], max_expansions=None)
            assert serial.upper[i, j] == pytest.approx(r.upper)
            assert serial.lower[i, j] == pytest.approx(r.lower)
            assert serial.exact[i, j] == r.exact


def test_symmetric_zero_diagonal(serial: DistanceMatrix) -> None:
    for a in (serial.lower, serial.upper, serial.value):
        assert np.array_equal(a, a.T)
        assert not np.diag(a).any()
    assert serial.all_exact
    assert np.array_equal(serial.exact, serial.exact.T)


def test_duplicates_computed_once(graphs: list[nx.DiGraph], serial: DistanceMatrix) -> None:
    n = len(graphs)
    unique, index_map = dedupe(graphs)
    assert serial.n == n and serial.n_unique == len(unique) <= n - 2
    assert serial.index_map.tolist() == index_map
    assert serial.index_map[-2] == serial.index_map[0] and serial.index_map[-1] == serial.index_map[4]
    assert serial.upper[0, n - 2] == 0 and np.array_equal(serial.upper[0], serial.upper[n - 2])
    assert serial.multiplicity.sum() == n
    assert serial.representatives.tolist() == sorted(serial.representatives.tolist())
    # distinct graphs are at a positive distance (all costs are positive)
    off = ~np.eye(serial.n_unique, dtype=bool)
    assert (serial.unique_lower[off] > 0).all()


def test_parallel_equals_serial(graphs: list[nx.DiGraph], serial: DistanceMatrix) -> None:
    calls: list[tuple[int, int]] = []
    parallel = distance_matrix(graphs, n_jobs=2, max_expansions=None, chunk_size=7, progress=lambda d, t: calls.append((d, t)))
    assert np.array_equal(parallel.upper, serial.upper)
    assert np.array_equal(parallel.lower, serial.lower)
    assert np.array_equal(parallel.exact, serial.exact)
    total = serial.n_unique * (serial.n_unique - 1) // 2
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(calls) > 2


def test_asymmetric_costs_give_directed_distances() -> None:
    costs = EditCosts(node_del=1, node_ins=3, edge_del=1, edge_ins=2)
    small = make_dag(["source"], [])
    big = make_dag(["source", "sink"], [(0, 1, "forward")])
    d = distance_matrix([small, big], costs=costs, n_jobs=1)
    assert d.upper[0, 1] == 3 + 2  # insert the sink and the edge
    assert d.upper[1, 0] == 1 + 1  # delete them


def test_trivial_inputs() -> None:
    calls: list[tuple[int, int]] = []
    d = distance_matrix([], progress=lambda a, b: calls.append((a, b)))
    assert d.n == 0 and d.upper.shape == (0, 0) and calls == [(0, 0)]
    one = make_dag(["source"], [])
    d = distance_matrix([one, one.copy()], n_jobs=2)
    assert d.n_unique == 1 and d.upper.tolist() == [[0.0, 0.0], [0.0, 0.0]]
