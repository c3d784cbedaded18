"""Clustering on GED matrices: recovery of synthetic job families, medoids,
k selection, argument checks, and nearest-medoid assignment."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pytest
from ged_graphgen import FAMILIES, relabel_randomly
from sklearn.metrics import adjusted_rand_score, silhouette_score

from streamtune_cli.ged import (
    Clustering,
    DistanceMatrix,
    assign_to_medoid,
    cluster_distance_matrix,
    dedupe,
    distance_matrix,
    graph_edit_distance,
)


@pytest.fixture(scope="module")
def families() -> tuple[list[nx.DiGraph], np.ndarray, DistanceMatrix]:
    rng = random.Random(42)
    graphs: list[nx.DiGraph] = []
    truth: list[int] = []
    for fam_id, family in enumerate(FAMILIES):
        for _ in range(14):
            graphs.append(family(rng))
            truth.append(fam_id)
    order = list(range(len(graphs)))
    rng.shuffle(order)
    graphs = [graphs[i] for i in order]
    labels = np.asarray([truth[i] for i in order])
    # No search budget: every pair is proven exactly (about 0.5 s in all).
    return graphs, labels, distance_matrix(graphs, n_jobs=2, max_expansions=None)


def test_auto_k_recovers_families(families: tuple[list[nx.DiGraph], np.ndarray, DistanceMatrix]) -> None:
    _, truth, d = families
    c = cluster_distance_matrix(d, k="auto")
    assert adjusted_rand_score(truth, c.labels) >= 0.9
    assert c.k == len(c.medoids) == len(set(c.labels.tolist()))
    assert set(c.scores) <= set(range(2, 13)) and c.scores
    assert c.silhouette == pytest.approx(max(s for s in c.scores.values()), abs=1e-9)


def test_medoid_is_a_member_minimising_distance(families: tuple[list[nx.DiGraph], np.ndarray, DistanceMatrix]) -> None:
    _, _, d = families
    c = cluster_distance_matrix(d, k=3)
    m = d.upper
    for cl in range(c.k):
        members = c.members(cl)
        assert c.medoids[cl] in members
        sums = m[np.ix_(members, members)].sum(axis=1)
        assert m[c.medoids[cl], members].sum() == pytest.approx(sums.min())
    assert c.sizes.tolist() == sorted(c.sizes.tolist(), reverse=True)


def test_dense_array_input_and_silhouette(families: tuple[list[nx.DiGraph], np.ndarray, DistanceMatrix]) -> None:
    _, truth, d = families
    c = cluster_distance_matrix(d.upper, k=3)
    assert adjusted_rand_score(truth, c.labels) >= 0.9
    assert c.silhouette == pytest.approx(silhouette_score(d.upper, c.labels, metric="precomputed"))


def test_duplicates_follow_their_representative() -> None:
    rng = random.Random(0)
    base = [f(rng) for f in FAMILIES for _ in range(3)]
    graphs = base + [relabel_randomly(g, rng) for g in base] + [relabel_randomly(base[0], rng) for _ in range(5)]
    d = distance_matrix(graphs, n_jobs=1, max_expansions=None)
    _, index_map = dedupe(base)
    assert d.n_unique == len(set(index_map))
    c = cluster_distance_matrix(d, k=3)
    assert np.array_equal(c.labels[: len(base)], c.labels[len(base) : 2 * len(base)])
    assert all(m == d.representatives[d.index_map[m]] for m in c.medoids)  # first occurrences
    # medoids count duplicates: the best member on the full n x n matrix
    full = d.upper
    for cl in range(c.k):
        members = c.members(cl)
        sums = full[np.ix_(members, members)].sum(axis=1)
        assert full[c.medoids[cl], members].sum() == pytest.approx(sums.min())
    # the silhouette is over distinct graphs: duplicates do not vote
    distinct = c.labels[d.representatives]
    assert c.silhouette == pytest.approx(silhouette_score(d.unique_upper, distinct, metric="precomputed"))


def test_small_and_invalid_inputs() -> None:
    assert cluster_distance_matrix(np.zeros((1, 1))).k == 1
    two = cluster_distance_matrix(np.array([[0.0, 4.0], [4.0, 0.0]]))
    assert two.k == 1 and np.isnan(two.silhouette) and two.labels.tolist() == [0, 0]
    assert cluster_distance_matrix(np.array([[0.0, 4.0], [4.0, 0.0]]), k=2).labels.tolist() == [0, 1]
    with pytest.raises(ValueError):
        cluster_distance_matrix(np.zeros((0, 0)))
    with pytest.raises(ValueError):
        cluster_distance_matrix(np.zeros((3, 3)), k=4)
    with pytest.raises(ValueError):
        cluster_distance_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        cluster_distance_matrix(np.zeros((3, 3)), k_range=(1, 4))
    with pytest.raises(ValueError):
        cluster_distance_matrix(-np.ones((3, 3)))


def test_assign_to_medoid(families: tuple[list[nx.DiGraph], np.ndarray, DistanceMatrix]) -> None:
    graphs, truth, d = families
    c = cluster_distance_matrix(d, k=3)
    medoid_graphs = [graphs[m] for m in c.medoids]
    rng = random.Random(99)
    for fam_id, family in enumerate(FAMILIES):
        g = family(rng)
        idx, dist = assign_to_medoid(g, medoid_graphs, max_expansions=None)
        values = [graph_edit_distance(g, m, max_expansions=None).value for m in medoid_graphs]
        assert dist == min(values) and idx == values.index(min(values))
        # the medoid's cluster is (mostly) the family the new graph came from
        members = c.members(idx)
        assert np.bincount(truth[members]).argmax() == fam_id


def test_clustering_is_a_value_type() -> None:
    c = Clustering(labels=np.zeros(2, dtype=np.int64), k=1, silhouette=float("nan"), medoids=np.zeros(1, dtype=np.int64))
    assert c.members(0).tolist() == [0, 1] and c.scores == {}
