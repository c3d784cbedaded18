"""The oracle: hand-computed minimal parallelism, minimality, agreement with the sim, infeasibility."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from streamtune_cli.capacity import capacity_rps, demand_rps
from streamtune_cli.executors.sim import steady_state
from streamtune_cli.spec import JobGraph, load_spec
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.testing.strategies import job_spec_data
from streamtune_cli.tuning.oracle import CAPACITY_TOLERANCE, oracle_parallelism
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
