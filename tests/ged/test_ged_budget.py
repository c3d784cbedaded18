"""The search budget is deterministic: GED results, distance matrices and medoid assignment depend on the
graphs and the budget only, never on the clock, the machine's speed or the number of worker processes."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from ged_graphgen import make_dag

from streamtune_cli.ged import (
    DEFAULT_MAX_EXPANSIONS,
    DEFAULT_PAIR_MAX_EXPANSIONS,
    assign_to_medoid,
    distance_matrix,
    exact_ged,
    graph_edit_distance,
)

ROOT = Path(__file__).resolve().parents[2]


def _random_job(rng: random.Random, n: int) -> nx.DiGraph:
    kinds = [rng.choice(["source", "map", "filter", "join", "sink", "aggregate"]) for _ in range(n)]
    edges = [(rng.randrange(j), j, rng.choice(["forward", "hash", "rebalance"])) for j in range(1, n)]
    edges += [(i, j, "hash") for i in range(n) for j in range(i + 2, n) if rng.random() < 0.1]
    return make_dag(kinds, edges)


@pytest.fixture(scope="module")
def hard_graphs() -> list[nx.DiGraph]:
    """14-16 node jobs: searched exactly with exact_max_nodes=16, most pairs need more than a few expansions."""
    rng = random.Random(5)
    return [_random_job(rng, rng.randint(14, 16)) for _ in range(6)]


class _RunawayClock:
    """A clock that leaps an hour forward on every reading, as if each step took that long."""

    def __init__(self) -> None:
        self.now = 1e9

    def __call__(self) -> float:
        self.now += 3600.0
        return self.now

    def ns(self) -> int:
        return int(self() * 1e9)


@pytest.fixture()
def runaway_clock(monkeypatch: pytest.MonkeyPatch) -> _RunawayClock:
    clock = _RunawayClock()
    for name in ("perf_counter", "monotonic", "time", "process_time", "thread_time"):
        monkeypatch.setattr(time, name, clock)
        monkeypatch.setattr(time, f"{name}_ns", clock.ns)
    return clock


def _compute(graphs: list[nx.DiGraph]) -> tuple:
    g1, g2 = graphs[0], graphs[1]
    pair = exact_ged(g1, g2, max_expansions=7)
    dispatched = graph_edit_distance(g1, g2, exact_max_nodes=16, max_expansions=7)
    matrix = distance_matrix(graphs, n_jobs=1, exact_max_nodes=16, max_expansions=7)
    nearest = assign_to_medoid(graphs[-1], graphs[:-1], exact_max_nodes=16, max_expansions=7)
    return pair, dispatched, (matrix.unique_lower, matrix.unique_upper, matrix.unique_exact), nearest


def test_budget_results_ignore_a_runaway_clock(hard_graphs: list[nx.DiGraph], runaway_clock: _RunawayClock) -> None:
    """The same inputs give identical results when every clock reading jumps an hour ahead (what any
    wall-clock deadline would read as "out of time" at once)."""
    start = runaway_clock.now
    slow = _compute(hard_graphs)
    assert runaway_clock.now == start  # nothing in the GED code even reads the clock
    pair, dispatched, (lo, up, ex), nearest = slow
    assert not pair.exact and pair.lower < pair.upper  # the budget really ran out on this pair
    assert not ex.all()
    again = _compute(hard_graphs)  # and once more: identical
    assert again[0] == pair and again[1] == dispatched and again[3] == nearest
    for a, b in zip(again[2], (lo, up, ex)):
        assert np.array_equal(a, b)


def test_budget_results_are_the_same_with_a_normal_clock(
    hard_graphs: list[nx.DiGraph], runaway_clock: _RunawayClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _compute(hard_graphs)
    monkeypatch.undo()  # the real clock again
    normal = _compute(hard_graphs)
    assert normal[0] == slow[0] and normal[1] == slow[1] and normal[3] == slow[3]
    for a, b in zip(normal[2], slow[2]):
        assert np.array_equal(a, b)


def test_a_spent_budget_gives_the_same_matrix_in_every_process_count(hard_graphs: list[nx.DiGraph]) -> None:
    serial = distance_matrix(hard_graphs, n_jobs=1, exact_max_nodes=16, max_expansions=7)
    parallel = distance_matrix(hard_graphs, n_jobs=2, exact_max_nodes=16, max_expansions=7, chunk_size=2)
    assert not serial.all_exact  # some pairs ran out of budget ...
    for name in ("unique_lower", "unique_upper", "unique_exact"):  # ... and still agree bit for bit
        assert np.array_equal(getattr(serial, name), getattr(parallel, name)), name
    gap = serial.unique_upper - serial.unique_lower
    assert ((gap > 0) == ~serial.unique_exact).all()  # never exact with a gap


def test_defaults() -> None:
    assert DEFAULT_MAX_EXPANSIONS == 10_000 and DEFAULT_PAIR_MAX_EXPANSIONS == 5_000
    with pytest.raises(ValueError):
        distance_matrix([], max_expansions=-1)
    with pytest.raises(ValueError):
        assign_to_medoid(make_dag(["source"], []), [make_dag(["sink"], [])], max_expansions=-5)


def test_no_ged_or_clustering_code_reads_the_clock() -> None:
    """A static guard: the solver and the clustering code never consult a clock (the CLI may, to report
    elapsed seconds)."""
    files = sorted((ROOT / "streamtune_cli/ged").glob("*.py")) + [ROOT / "streamtune_cli/history/clusters.py"]
    pattern = re.compile(r"\bimport time\b|\bfrom time import\b|perf_counter|monotonic|\bdeadline\b|time_limit")
    offenders = [f"{f.name}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
