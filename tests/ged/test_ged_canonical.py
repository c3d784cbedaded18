"""canonical_hash invariance/sensitivity and dedupe's no-false-merge guarantee."""

from __future__ import annotations

import random

import networkx as nx
import pytest
from ged_graphgen import FAMILIES, labeled_dags, make_dag, relabel_randomly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtune_cli.ged import canonical as canonical_mod
from streamtune_cli.ged import canonical_hash, dedupe, same_labeled_graph

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(labeled_dags(min_nodes=0, max_nodes=9, rare_max=None), st.randoms(use_true_random=False))
def test_hash_invariant_under_node_permutation(g: nx.DiGraph, rnd: random.Random) -> None:
    assert canonical_hash(relabel_randomly(g, rnd)) == canonical_hash(g)


def _base() -> nx.DiGraph:
    return make_dag(
        ["source", "map", "filter", "join", "sink"],
        [(0, 1, "forward"), (0, 2, "hash"), (1, 3, "hash"), (2, 3, "hash"), (3, 4, "forward")],
    )


def test_hash_changes_with_labels_and_direction() -> None:
    base = canonical_hash(_base())
    relabelled = _base()
    relabelled.nodes[1]["kind"] = "flat_map"
    repartitioned = _base()
    repartitioned.edges[0, 1]["partitioning"] = "rebalance"
    reversed_edge = _base()
    reversed_edge.remove_edge(3, 4)
    reversed_edge.add_edge(4, 3, partitioning="forward")
    extra_edge = _base()
    extra_edge.add_edge(0, 4, partitioning="forward")
    unlabeled = _base()
    del unlabeled.nodes[2]["kind"]
    hashes = [canonical_hash(g) for g in (relabelled, repartitioned, reversed_edge, extra_edge, unlabeled)]
    assert base not in hashes
    assert len(set(hashes)) == len(hashes)


def test_missing_label_hashes_like_none() -> None:
    a = make_dag([None, "map"], [(0, 1, None)])
    b = nx.DiGraph()
    b.add_node("x", kind=None)
    b.add_node("y", kind="map")
    b.add_edge("x", "y", partitioning=None)
    assert canonical_hash(a) == canonical_hash(b)
    assert dedupe([a, b])[1] == [0, 0]


def _check_partition(graphs: list[nx.DiGraph]) -> None:
    unique, index_map = dedupe(graphs)
    assert len(index_map) == len(graphs)
    assert sorted(set(index_map)) == list(range(len(unique)))
    for g, u in zip(graphs, index_map):
        assert same_labeled_graph(g, unique[u])
    for i in range(len(unique)):
        for j in range(i + 1, len(unique)):
            assert not same_labeled_graph(unique[i], unique[j])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(labeled_dags(max_nodes=6, rare_max=None), min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_dedupe_groups_exactly_the_isomorphic_graphs(graphs: list[nx.DiGraph], rnd: random.Random) -> None:
    # add relabelled copies so there is something to merge
    graphs = graphs + [relabel_randomly(g, rnd) for g in graphs[::2]]
    rnd.shuffle(graphs)
    _check_partition(graphs)


@pytest.mark.parametrize("mode", ["wl-colours", "flat-colours", "vf2-only"])
def test_dedupe_survives_hash_collisions(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    # every graph lands in one bucket: only the isomorphism checks separate
    # them (colour-guided search with real or useless colours, or VF2 alone)
    real_key = canonical_mod._wl_key

    def colliding_key(g: nx.DiGraph, intern: dict) -> tuple:
        colours = real_key(g, intern)[1] if mode == "wl-colours" else {n: 0 for n in g.nodes}
        return "collide", colours

    monkeypatch.setattr(canonical_mod, "_wl_key", colliding_key)
    if mode == "vf2-only":
        monkeypatch.setattr(canonical_mod, "_colour_isomorphic", lambda a, b: False)
    rng = random.Random(5)
    graphs = [f(rng) for f in FAMILIES for _ in range(4)]
    graphs += [relabel_randomly(g, rng) for g in graphs[:6]]
    # same shape and label multiset, edge labels moved: must stay apart
    graphs.append(make_dag(["source", "map", "sink"], [(0, 1, "forward"), (1, 2, "hash")]))
    graphs.append(make_dag(["source", "map", "sink"], [(0, 1, "hash"), (1, 2, "forward")]))
    unique, index_map = dedupe(graphs)
    _check_partition(graphs)
    assert len(unique) < len(graphs)
    assert index_map[-1] != index_map[-2]


def test_self_loops_and_isolated_nodes() -> None:
    a = make_dag(["map", "map", "sink"], [(0, 0, "hash"), (0, 1, "forward")])
    b = make_dag(["map", "map", "sink"], [(1, 1, "hash"), (1, 0, "forward")])
    c = make_dag(["map", "map", "sink"], [(1, 1, "hash"), (0, 1, "forward")])
    assert canonical_hash(a) == canonical_hash(b)
    _check_partition([a, b, c, relabel_randomly(c, random.Random(1))])
    assert dedupe([a, b, c])[1] == [0, 0, 1]


def test_dedupe_keeps_first_occurrence_order() -> None:
    a = make_dag(["source", "sink"], [(0, 1, "forward")])
    b = make_dag(["source", "sink"], [(0, 1, "hash")])
    a2 = relabel_randomly(a, random.Random(0))
    unique, index_map = dedupe([b, a, a2, b.copy()])
    assert index_map == [0, 1, 1, 0]
    assert unique[0] is not None and canonical_hash(unique[1]) == canonical_hash(a)


def test_same_structure_different_labels_not_merged() -> None:
    # same shape, label multiset permuted across positions
    g1 = make_dag(["source", "map", "sink"], [(0, 1, "forward"), (1, 2, "hash")])
    g2 = make_dag(["source", "map", "sink"], [(0, 1, "hash"), (1, 2, "forward")])
    assert canonical_hash(g1) != canonical_hash(g2)
    assert dedupe([g1, g2])[1] == [0, 1]
