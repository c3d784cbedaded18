"""Exact GED, bounds and the anytime contract, checked against networkx, a
brute-force oracle, hand-computed cases and metric properties."""

from __future__ import annotations

import random
import time

import networkx as nx
import pytest
from ged_graphgen import (
    ANY_COSTS,
    FAMILIES,
    NX_SAFE_COSTS,
    brute_force_ged,
    dag_pairs,
    labeled_dags,
    make_dag,
    relabel_randomly,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtune_cli.ged import (
    EditCosts,
    GedResult,
    bounded_ged,
    exact_ged,
    graph_edit_distance,
    lower_bound,
    networkx_cost_kwargs,
    same_labeled_graph,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# networkx's exact GED needs milliseconds for the sizes drawn below (up to a 7-node vs 6-node pair: at
# most 0.3 s measured over 150 random pairs) and tens of seconds only from 8 vs 8 nodes on. The timeout
# is a safety net far above that: should networkx ever hit it, its answer is only an upper bound, so the
# test is skipped (with the reason) instead of comparing against a weaker claim.
NX_TIMEOUT_S = 30.0


def check_against_networkx(g1: nx.DiGraph, g2: nx.DiGraph, costs: EditCosts) -> None:
    r = exact_ged(g1, g2, costs)  # no search budget: always runs to the proven optimum
    assert r.exact and r.lower == r.upper
    start = time.perf_counter()
    ref = nx.graph_edit_distance(g1, g2, **networkx_cost_kwargs(costs), timeout=NX_TIMEOUT_S)
    if time.perf_counter() - start >= NX_TIMEOUT_S:
        pytest.skip(
            f"networkx hit its {NX_TIMEOUT_S:g} s timeout on a {len(g1)}- vs {len(g2)}-node pair; "
            "its answer is then not the optimum to compare with"
        )
    assert r.value == pytest.approx(ref, abs=1e-9)


# ------------------------------------------------------------ vs networkx
@SETTINGS
@given(dag_pairs(max_nodes=6, rare_max=7))
def test_exact_equals_networkx_unit_costs(pair: tuple[nx.DiGraph, nx.DiGraph]) -> None:
    check_against_networkx(*pair, EditCosts())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag_pairs(max_nodes=5, rare_max=6), st.sampled_from(NX_SAFE_COSTS))
def test_exact_equals_networkx_weighted_costs(pair: tuple[nx.DiGraph, nx.DiGraph], costs: EditCosts) -> None:
    check_against_networkx(*pair, costs)


@SETTINGS
@given(
    labeled_dags(min_nodes=0, max_nodes=4, rare_max=5),
    labeled_dags(min_nodes=0, max_nodes=4, rare_max=5),
    st.sampled_from(ANY_COSTS),
)
def test_exact_equals_brute_force_any_costs(g1: nx.DiGraph, g2: nx.DiGraph, costs: EditCosts) -> None:
    # covers cost regimes where networkx itself is not exact (sub >= del + ins)
    r = exact_ged(g1, g2, costs)
    assert r.exact
    assert r.value == pytest.approx(brute_force_ged(g1, g2, costs), abs=1e-9)


@pytest.mark.parametrize("node_sub", [1.0, 2.0, 3.0])
def test_substitution_dearer_than_delete_insert(node_sub: float) -> None:
    # isolated nodes: relabel (node_sub) or delete + insert (2), whichever is cheaper
    a = make_dag(["source", "map"], [])
    b = make_dag(["source", "filter"], [])
    costs = EditCosts(node_sub=node_sub)
    assert exact_ged(a, b, costs).value == min(node_sub, 2.0)
    # inside a chain the delete + insert route also re-does 2 edges (total 6)
    g1 = make_dag(["source", "map", "sink"], [(0, 1, "forward"), (1, 2, "forward")])
    g2 = make_dag(["source", "filter", "sink"], [(0, 1, "forward"), (1, 2, "forward")])
    assert exact_ged(g1, g2, costs).value == min(node_sub, 6.0)
    assert exact_ged(g1, g2, costs).value == brute_force_ged(g1, g2, costs)


# --------------------------------------------------------------- bounds
@SETTINGS
@given(labeled_dags(), labeled_dags(), st.sampled_from(ANY_COSTS))
def test_bounds_sandwich_exact(g1: nx.DiGraph, g2: nx.DiGraph, costs: EditCosts) -> None:
    exact = exact_ged(g1, g2, costs).value
    b = bounded_ged(g1, g2, costs)
    assert b.lower <= exact + 1e-9 <= b.upper + 2e-9
    assert lower_bound(g1, g2, costs) <= exact + 1e-9
    if b.exact:
        assert b.lower == b.upper == pytest.approx(exact)


@pytest.mark.parametrize("seed", range(4))
def test_bounded_on_large_graphs_is_consistent(seed: int) -> None:
    rng = random.Random(seed)
    g1 = nx.DiGraph(nx.gnp_random_graph(40, 0.08, seed=seed, directed=True).edges)
    g2 = nx.DiGraph(nx.gnp_random_graph(38, 0.08, seed=seed + 100, directed=True).edges)
    for g in (g1, g2):
        for n in g.nodes:
            g.nodes[n]["kind"] = rng.choice(["map", "filter", "join"])
        for e in g.edges:
            g.edges[e]["partitioning"] = rng.choice(["hash", "forward"])
    b = bounded_ged(g1, g2)
    assert 0 < b.lower <= b.upper
    assert b.exact == (b.lower == b.upper)
    # size dispatch: above exact_max_nodes the bounds are returned as is
    assert graph_edit_distance(g1, g2, exact_max_nodes=12) == b


# ------------------------------------------------------ metric properties
@SETTINGS
@given(labeled_dags(), labeled_dags(), st.sampled_from(ANY_COSTS))
def test_symmetry(g1: nx.DiGraph, g2: nx.DiGraph, costs: EditCosts) -> None:
    forward = exact_ged(g1, g2, costs).value
    assert exact_ged(g2, g1, costs.swapped()).value == pytest.approx(forward, abs=1e-9)
    if costs.is_symmetric:
        assert exact_ged(g2, g1, costs).value == pytest.approx(forward, abs=1e-9)


@SETTINGS
@given(labeled_dags(), labeled_dags(), st.randoms(use_true_random=False))
def test_zero_iff_identical(g1: nx.DiGraph, g2: nx.DiGraph, rnd: random.Random) -> None:
    assert exact_ged(g1, relabel_randomly(g1, rnd)).value == 0
    d = exact_ged(g1, g2).value
    assert (d == 0) == same_labeled_graph(g1, g2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    labeled_dags(max_nodes=5, rare_max=6),
    labeled_dags(max_nodes=5, rare_max=6),
    labeled_dags(max_nodes=5, rare_max=6),
    st.sampled_from(ANY_COSTS),
)
def test_triangle_inequality(a: nx.DiGraph, b: nx.DiGraph, c: nx.DiGraph, costs: EditCosts) -> None:
    ab = exact_ged(a, b, costs).value
    bc = exact_ged(b, c, costs).value
    ac = exact_ged(a, c, costs).value
    assert ac <= ab + bc + 1e-9


# ------------------------------------------------------------ hand cases
SRC_MAP = make_dag(["source", "map"], [(0, 1, "forward")])


def test_empty_graphs() -> None:
    empty = nx.DiGraph()
    one = make_dag(["source"], [])
    costs = EditCosts(node_del=2, node_ins=3)
    assert exact_ged(empty, empty).value == 0
    assert exact_ged(empty, one, costs) == GedResult(3, 3, True)
    assert exact_ged(one, empty, costs) == GedResult(2, 2, True)
    # deleting both nodes and the edge
    assert exact_ged(SRC_MAP, empty).value == 3


def test_relabel_one_node() -> None:
    g2 = make_dag(["source", "filter"], [(0, 1, "forward")])
    assert exact_ged(SRC_MAP, g2).value == 1
    assert exact_ged(SRC_MAP, g2, EditCosts(node_sub=0.25)).value == 0.25


def test_missing_label_is_none() -> None:
    unlabeled = make_dag([None, "map"], [(0, 1, None)])
    explicit = nx.DiGraph()
    explicit.add_node(0, kind=None)
    explicit.add_node(1, kind="map")
    explicit.add_edge(0, 1, partitioning=None)
    assert exact_ged(unlabeled, explicit).value == 0
    assert exact_ged(unlabeled, SRC_MAP).value == 2  # one node label, one edge label


def test_change_partitioning_and_add_edge() -> None:
    hashed = make_dag(["source", "map"], [(0, 1, "hash")])
    assert exact_ged(SRC_MAP, hashed, EditCosts(edge_sub=0.5)).value == 0.5
    # substitution dearer than delete+insert is never used
    assert exact_ged(SRC_MAP, hashed, EditCosts(edge_sub=5, edge_del=1, edge_ins=2)).value == 3
    no_edge = make_dag(["source", "map"], [])
    assert exact_ged(no_edge, SRC_MAP, EditCosts(edge_ins=4)).value == 4


@pytest.mark.parametrize("node_sub", [0.25, 1.0, 5.0])
def test_reverse_one_edge_is_directed(node_sub: float) -> None:
    reversed_ = make_dag(["source", "map"], [(1, 0, "forward")])
    # either delete + insert the edge (2) or swap both node labels (2 * node_sub)
    assert exact_ged(SRC_MAP, reversed_, EditCosts(node_sub=node_sub)).value == min(2.0, 2 * node_sub)


def test_chain_with_skipped_middle_node() -> None:
    chain = make_dag(["source", "map", "sink"], [(0, 1, "forward"), (1, 2, "forward")])
    short = make_dag(["source", "sink"], [(0, 1, "forward")])
    # deleting "map" costs 1 + its 2 edges + inserting source->sink = 4; cheaper:
    # map "map" onto "sink" (relabel 1), delete "sink" (1) and edge map->sink (1)
    assert exact_ged(chain, short).value == 3
    assert exact_ged(chain, short).value == brute_force_ged(chain, short, EditCosts())


# ---------------------------------------------------------------- anytime
def _random_job(rng: random.Random, n: int) -> nx.DiGraph:
    kinds = [rng.choice(["source", "map", "filter", "join", "sink", "aggregate"]) for _ in range(n)]
    edges = [(rng.randrange(j), j, rng.choice(["forward", "hash", "rebalance"])) for j in range(1, n)]
    edges += [(i, j, "hash") for i in range(n) for j in range(i + 2, n) if rng.random() < 0.1]
    return make_dag(kinds, edges)


def test_anytime_large_pair_keeps_the_contract() -> None:
    """A 40-node pair under a small search budget: the search cannot finish, so it returns the best path
    found with a proven lower bound, never labelled exact; the same budget always gives the same answer."""
    rng = random.Random(7)
    g1, g2 = _random_job(rng, 40), _random_job(rng, 40)
    root = bounded_ged(g1, g2)
    assert root.lower < root.upper  # the bounds alone do not settle this pair
    r = exact_ged(g1, g2, max_expansions=50)
    assert r.lower <= r.upper
    # exact exactly when the interval closed; never exact with a gap, never inexact without one
    assert r.exact == (r.lower == r.upper)
    assert not r.exact  # 50 expansions cannot prove a 40-node optimum here
    # both intervals contain the optimum, so they overlap; the search never loses the root bound
    assert r.lower <= root.upper and root.lower <= r.upper
    assert root.lower <= r.lower
    assert exact_ged(g1, g2, max_expansions=50) == r


@pytest.mark.parametrize("budget", [0, 1, 3, 10])
def test_anytime_bounds_contain_the_optimum(budget: int) -> None:
    rng = random.Random(11)
    for _ in range(6):
        g1, g2 = _random_job(rng, rng.randint(10, 12)), _random_job(rng, rng.randint(10, 12))
        optimum = exact_ged(g1, g2).value
        r = exact_ged(g1, g2, max_expansions=budget)
        assert r.lower <= optimum + 1e-9 <= r.upper + 2e-9
        if r.exact:
            assert r.lower == r.upper == optimum
        else:
            assert r.lower < r.upper


def test_a_larger_budget_never_finds_a_worse_path_and_enough_budget_is_exact() -> None:
    """The search visits nodes in a fixed order, so a larger budget explores a longer prefix of the same
    sequence: the best path found can only improve, and once the budget covers the search it is exact."""
    rng = random.Random(11)
    hit = 0
    for _ in range(8):
        g1, g2 = _random_job(rng, rng.randint(10, 12)), _random_job(rng, rng.randint(10, 12))
        full = exact_ged(g1, g2)
        uppers = [exact_ged(g1, g2, max_expansions=b).upper for b in (0, 1, 2, 4, 8, 16, 32)]
        assert uppers == sorted(uppers, reverse=True)
        hit += exact_ged(g1, g2, max_expansions=0).upper > full.value
        assert exact_ged(g1, g2, max_expansions=100_000) == full
    assert hit > 0  # some of these pairs do need the search


def test_the_budget_is_validated() -> None:
    g = make_dag(["source", "sink"], [(0, 1, "forward")])
    with pytest.raises(ValueError):
        exact_ged(g, g, max_expansions=-1)
    with pytest.raises(TypeError):
        exact_ged(g, g, max_expansions=0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        graph_edit_distance(g, g, max_expansions=True)  # type: ignore[arg-type]
    assert exact_ged(g, g, max_expansions=0).exact


def test_result_type_refuses_exact_with_gap() -> None:
    with pytest.raises(ValueError):
        GedResult(lower=1.0, upper=2.0, exact=True)
    with pytest.raises(ValueError):
        GedResult(lower=3.0, upper=2.0, exact=False)
    assert GedResult(1.0, 2.0, False).value == 2.0


def test_family_members_are_close() -> None:
    """Two members of one family are nearer each other than to any member of another family.

    No search budget: these graphs have at most 9 nodes, the search proves the optimum in milliseconds, and
    the verdict cannot depend on how fast the machine is.
    """
    rng = random.Random(3)
    pairs = [(family(rng), family(rng)) for family in FAMILIES]
    for i, (a, b) in enumerate(pairs):
        within = exact_ged(a, b)
        assert within.exact
        others = [g for j, pair in enumerate(pairs) if j != i for g in pair]
        nearest_other = min(exact_ged(a, g).value for g in others)
        assert within.value < nearest_other, FAMILIES[i].__name__


def test_invalid_costs_rejected() -> None:
    with pytest.raises(ValueError):
        EditCosts(node_del=-1)
    with pytest.raises(ValueError):
        EditCosts(edge_sub=float("inf"))
