"""The oracle: hand-computed minimal parallelism, minimality, agreement with the sim, infeasibility."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtune_cli.capacity import capacity_rps, demand_rps, peak_parallelism
from streamtune_cli.executors.sim import steady_state
from streamtune_cli.spec import JobGraph, load_spec
from streamtune_cli.spec.models import JobSpec, Scaling
from streamtune_cli.testing.strategies import job_spec_data
from streamtune_cli.tuning.oracle import (
    CAPACITY_TOLERANCE,
    oracle_data,
    oracle_parallelism,
)
from streamtune_cli.tuning.testing import chain_spec

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "configs/nexmark").glob("*.yaml")) + sorted((ROOT / "configs/synthetic").glob("*.yaml"))


def test_hand_computed_linear_chain() -> None:
    spec = chain_spec(
        [("src", "source", 5.0, 1.0), ("parse", "map", 8.0, 1.0), ("keep", "filter", 4.0, 0.5), ("enrich", "map", 30.0, 1.0), ("sink", "sink", 2.0, 1.0)],
        rate_rps=300_000,
    )
    result = oracle_parallelism(spec)
    # per-instance rates 200k, 125k, 250k, 33.3k, 500k; inputs 300k, 300k, 300k, 150k, 150k
    assert result.parallelism == {"src": 2, "parse": 3, "keep": 2, "enrich": 5, "sink": 1}
    assert result.feasible and result.total == 13 and result.infeasible_operators == []
    assert result.rate_rps == 300_000 and "13 instances" in result.reason
    assert oracle_parallelism(spec, rate_rps=100_000).parallelism == {"src": 1, "parse": 1, "keep": 1, "enrich": 2, "sink": 1}


def _assert_minimal(spec: JobSpec, rate: float | None = None) -> None:
    result = oracle_parallelism(spec, rate)
    graph = JobGraph(spec)
    rates = graph.source_rates(result.rate_rps)
    if not result.feasible:
        return
    demand = demand_rps(graph, rates, result.parallelism)
    for op_id, p in result.parallelism.items():
        assert capacity_rps(graph, op_id, p) >= demand[op_id] * (1 - CAPACITY_TOLERANCE)
        if p > 1:
            fewer = {**result.parallelism, op_id: p - 1}
            assert capacity_rps(graph, op_id, p - 1) < demand_rps(graph, rates, fewer)[op_id] * (1 - CAPACITY_TOLERANCE)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_oracle_is_minimal_on_shipped_jobs(path: Path) -> None:
    _assert_minimal(load_spec(path, check_sql_expressions=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job_spec_data(max_operators=7, semantics=False))
def test_oracle_is_minimal_and_keeps_up_in_the_sim(data: dict) -> None:
    spec = JobSpec.model_validate(data)
    _assert_minimal(spec)
    result = oracle_parallelism(spec)
    if result.feasible:
        state = steady_state(spec, result.parallelism, result.rate_rps)
        assert state.achieved_rate_rps >= 0.98 * state.target_rate_rps


def test_infeasible_operator_gets_its_peak_and_a_reason() -> None:
    # Heavy coherency cost: capacity peaks at p = round(sqrt((1 - sigma) / kappa)) = 10 and then falls.
    spec = chain_spec(
        [("src", "source", 1.0, 1.0), ("agg", "aggregate", 100.0, 1.0), ("sink", "sink", 1.0, 1.0)],
        rate_rps=1_000_000,
        sigma=0.0,
        kappa=0.01,
        max_parallelism=64,
    )
    result = oracle_parallelism(spec)
    assert not result.feasible
    assert result.infeasible_operators == ["agg"]
    assert result.parallelism["agg"] == 10
    assert "agg" in result.reason and "infeasible" in result.reason
    # a global cap below the peak: the cap is the best it can do
    assert oracle_parallelism(spec, max_parallelism=4).parallelism["agg"] == 4


def test_broadcast_input_counts_every_instance() -> None:
    spec = JobSpec.model_validate(
        {
            "name": "bcast",
            "workload": {"rate_rps": 1000},
            "operators": [
                {"id": "src", "kind": "source", "cost_us": 1, "scaling": {"sigma": 0, "kappa": 0}},
                {"id": "rules", "kind": "map", "cost_us": 10, "scaling": {"sigma": 0, "kappa": 0}},
                {"id": "sink", "kind": "sink", "cost_us": 100, "scaling": {"sigma": 0, "kappa": 0}},
            ],
            "edges": [{"from": "src", "to": "rules", "partitioning": "broadcast"}, {"from": "rules", "to": "sink", "partitioning": "rebalance"}],
        }
    )
    result = oracle_parallelism(spec)
    # rules: every instance sees all 1000 rec/s and does 100k/s, so 1 instance; sink then gets 1000 rec/s
    # and does 10k/s per instance: 1 instance.
    assert result.parallelism == {"src": 1, "rules": 1, "sink": 1}
    assert result.demand_rps["sink"] == pytest.approx(1000)


def _scan_oracle(spec: JobSpec, rate: float, max_parallelism: int | None) -> tuple[dict[str, int], bool]:
    """The definition, computed the slow way: for each operator in topological order, scan p = 1, 2, ...
    up to min(global cap, its max_parallelism) for the first capacity >= demand; else the first peak."""
    graph = JobGraph(spec)
    rates = graph.source_rates(rate)
    chosen = {op.id: 1 for op in spec.operators}
    feasible = True
    for op_id in graph.topological_order:
        own = graph.operator(op_id).max_parallelism
        cap = own if max_parallelism is None else min(own, max_parallelism)
        found = None
        for p in range(1, cap + 1):
            need = demand_rps(graph, rates, {**chosen, op_id: p})[op_id]
            if capacity_rps(graph, op_id, p) >= need * (1 - CAPACITY_TOLERANCE):
                found = p
                break
        if found is None:
            found, feasible = peak_parallelism(graph, op_id, cap), False
        chosen[op_id] = found
    return chosen, feasible


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    job_spec_data(max_operators=6, semantics=False),
    st.sampled_from([1_000.0, 300_000.0, 5e6, 1e8]),
    st.sampled_from([None, 1, 7, 64, 1000]),
    st.sampled_from([None, (0.0, 0.0), (0.2, 0.0), (0.05, 0.002), (1.0, 0.0), (0.0, 0.3)]),
)
def test_fast_search_matches_the_linear_scan(data: dict, rate: float, cap: int | None, scaling: tuple | None) -> None:
    # Random DAGs with broadcast, hash and skewed inputs, rates from easy to infeasible, and USL curves
    # from linear to strongly retrograde: the peak-then-bisect search gives the scan's answer every time.
    spec = JobSpec.model_validate(data)
    if scaling is not None:
        sigma, kappa = scaling
        usl = Scaling(sigma=sigma, kappa=kappa)
        spec = spec.model_copy(update={"operators": [op.model_copy(update={"scaling": usl}) for op in spec.operators]})
    expected, feasible = _scan_oracle(spec, rate, cap)
    result = oracle_parallelism(spec, rate, max_parallelism=cap)
    assert result.parallelism == expected
    assert result.feasible == feasible
    assert result.demand_rps == pytest.approx(demand_rps(JobGraph(spec), JobGraph(spec).source_rates(rate), expected))


def test_a_global_cap_never_lifts_an_operators_own_max_parallelism() -> None:
    spec = load_spec(ROOT / "configs/synthetic/linear_chain.yaml", check_sql_expressions=False)
    result = oracle_parallelism(spec, 2e7, max_parallelism=1000)
    assert not result.feasible
    for op in spec.operators:
        assert result.parallelism[op.id] <= op.max_parallelism == 128
    assert "max parallelism 128" in result.reason


def test_an_operator_that_can_never_keep_up_costs_few_capacity_evaluations(monkeypatch: pytest.MonkeyPatch) -> None:
    # One instance does 1 record per 1000 s and the cap is Flink's 32768: a linear scan evaluated 32768
    # capacities (twice, with the peak search); peak-then-bisect needs a few dozen.
    import streamtune_cli.tuning.oracle as oracle_module

    calls: list[int] = []

    def counted(graph: JobGraph, op_id: str, p: int) -> float:
        calls.append(p)
        return capacity_rps(graph, op_id, p)

    monkeypatch.setattr(oracle_module, "capacity_rps", counted)
    spec = JobSpec.model_validate(
        {
            "name": "slow",
            "workload": {"rate_rps": 1000},
            "operators": [
                {"id": "s", "kind": "source"},
                {"id": "k", "kind": "sink", "cost_us": 1e9, "max_parallelism": 32768},
            ],
            "edges": [{"from": "s", "to": "k", "partitioning": "rebalance"}],
        }
    )
    result = oracle_parallelism(spec)
    assert not result.feasible and result.infeasible_operators == ["k"]
    # The sink's default USL (sigma 0.02, kappa 0) only rises: its peak is the cap.
    assert result.parallelism["k"] == 32768 == peak_parallelism(JobGraph(spec), "k", 32768)
    assert len(calls) < 200


def test_a_long_chain_is_solved_in_linear_time() -> None:
    # 1500 operators: recomputing the whole demand map for every candidate p of every operator took 17 s.
    stages = [("src", "source", 1.0, 1.0)] + [(f"m{i}", "map", 1.0, 1.0) for i in range(1498)] + [("sink", "sink", 1.0, 1.0)]
    spec = chain_spec(stages, rate_rps=2_500_000)
    started = time.perf_counter()
    result = oracle_parallelism(spec)
    assert time.perf_counter() - started < 3.0
    assert result.feasible and set(result.parallelism.values()) == {3}  # 1e6 rec/s per instance, linear


def test_oracle_data_is_plain_json_data() -> None:
    spec = chain_spec([("src", "source", 5.0, 1.0), ("sink", "sink", 2.0, 1.0)], rate_rps=300_000)
    data = oracle_data(oracle_parallelism(spec))
    assert data == {
        "parallelism": {"src": 2, "sink": 1},
        "total": 3,
        "feasible": True,
        "rate_rps": 300_000.0,
        "reason": "minimal parallelism meeting 300,000 rec/s: 3 instances in total",
    }


@pytest.mark.parametrize("rate", [0.0, -5.0, float("inf"), float("nan")])
def test_rate_must_be_finite_and_positive(rate: float) -> None:
    spec = chain_spec([("src", "source", 5.0, 1.0), ("sink", "sink", 2.0, 1.0)], rate_rps=1000)
    with pytest.raises(ValueError, match="finite"):
        oracle_parallelism(spec, rate)
