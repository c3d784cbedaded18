"""DS2 against hand computation from the cost hints (never from the code's own output)."""

from __future__ import annotations

import math

import pytest

from streamtune_cli.executors.base import Observation
from streamtune_cli.executors.sim import SimExecutor
from streamtune_cli.spec import JobGraph
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.tuning.loop import TuningConfig, run_tuning
from streamtune_cli.tuning.testing import chain_spec
from streamtune_cli.tuning.tuners import make_tuner


def observe(spec: JobSpec, parallelism: dict[str, int]) -> Observation:
    sim = SimExecutor(noise=0.0)
    sim.deploy(spec, parallelism)
    return sim.observe()


def test_ds2_matches_a_hand_computed_step_with_sublinear_scaling() -> None:
    # enrich scales sub-linearly (sigma 0.1) and starts at p = 2; everything else is linear at p = 1.
    spec = chain_spec(
        [("src", "source", 5.0, 1.0), ("parse", "map", 8.0, 1.0), ("keep", "filter", 4.0, 0.5), ("enrich", "map", 30.0, 1.0), ("sink", "sink", 2.0, 1.0)],
        rate_rps=300_000,
    )
    ops = [op.model_copy(update={"scaling": op.scaling.model_copy(update={"sigma": 0.1})}) if op.id == "enrich" else op for op in spec.operators]
    spec = spec.model_copy(update={"operators": ops})
    parallelism = {"src": 1, "parse": 1, "keep": 1, "enrich": 2, "sink": 1}

    # By hand: per-instance true rate = 1e6 / cost_us (linear), and for enrich at p = 2 the USL gives
    # 2 x (1e6/30) / (1 + 0.1 x 1) per 2 instances. Targets: 300k into src, parse and keep; keep passes
    # half, so 150k into enrich and into sink.
    enrich_per_instance = (1e6 / 30.0) * 2 / (1 + 0.1 * 1) / 2
    expected = {
        "src": math.ceil(300_000 / (1e6 / 5.0)),  # 1.5 -> 2
        "parse": math.ceil(300_000 / (1e6 / 8.0)),  # 2.4 -> 3
        "keep": math.ceil(300_000 / (1e6 / 4.0)),  # 1.2 -> 2
        "enrich": math.ceil(150_000 / enrich_per_instance),  # 4.95 -> 5
        "sink": math.ceil(150_000 / (1e6 / 2.0)),  # 0.3 -> 1
    }
    assert expected == {"src": 2, "parse": 3, "keep": 2, "enrich": 5, "sink": 1}
    decision = make_tuner("ds2").propose(JobGraph(spec), parallelism, observe(spec, parallelism), [])
    assert decision.parallelism == expected
    assert "4.95" in decision.reasons["enrich"]
    # Sub-linear scaling: 5 instances of enrich give 5 x 33.3k / 1.4 = 119k < 150k, so DS2 undershoots.
    after = observe(spec, decision.parallelism)
    assert after.achieved_rate_rps == pytest.approx(300_000 * (5 * (1e6 / 30) / 1.4) / 150_000)


def test_ds2_propagates_targets_through_a_diamond() -> None:
    linear = {"sigma": 0.0, "kappa": 0.0}
    spec = JobSpec.model_validate(
        {
            "name": "diamond",
            "workload": {"rate_rps": 100_000},
            "operators": [
                {"id": "src", "kind": "source", "cost_us": 2, "scaling": linear},
                {"id": "half", "kind": "filter", "cost_us": 4, "selectivity": 0.5, "scaling": linear},
                {"id": "twice", "kind": "flat_map", "cost_us": 4, "selectivity": 2.0, "scaling": linear},
                {"id": "merge", "kind": "map", "cost_us": 10, "scaling": linear},
                {"id": "sink", "kind": "sink", "cost_us": 1, "scaling": linear},
            ],
            "edges": [
                {"from": "src", "to": "half", "partitioning": "rebalance"},
                {"from": "src", "to": "twice", "partitioning": "rebalance"},
                {"from": "half", "to": "merge", "partitioning": "rebalance"},
                {"from": "twice", "to": "merge", "partitioning": "rebalance"},
                {"from": "merge", "to": "sink", "partitioning": "rebalance"},
            ],
        }
    )
    parallelism = {op.id: 1 for op in spec.operators}
    decision = make_tuner("ds2").propose(JobGraph(spec), parallelism, observe(spec, parallelism), [])
    # merge receives 0.5 x 100k + 2 x 100k = 250k at 100k per instance -> 3; sink 250k at 1M -> 1;
    # half and twice see 100k each at 250k per instance -> 1.
    assert decision.parallelism == {"src": 1, "half": 1, "twice": 1, "merge": 3, "sink": 1}


def test_ds2_overprovision_factor() -> None:
    spec = chain_spec([("src", "source", 1.0, 1.0), ("work", "map", 10.0, 1.0), ("sink", "sink", 1.0, 1.0)], rate_rps=200_000)
    parallelism = spec.parallelism
    obs = observe(spec, parallelism)
    plain = make_tuner("ds2").propose(JobGraph(spec), parallelism, obs, [])
    padded = make_tuner("ds2", overprovision=0.5).propose(JobGraph(spec), parallelism, obs, [])
    assert plain.parallelism["work"] == 2 and padded.parallelism["work"] == 3  # ceil(2 x 1.5)


def test_ds2_needs_more_steps_under_sublinear_scaling_but_gets_there() -> None:
    spec = chain_spec(
        [("src", "source", 1.0, 1.0), ("agg", "aggregate", 20.0, 1.0), ("sink", "sink", 1.0, 1.0)],
        rate_rps=400_000,
        sigma=0.05,
        kappa=0.0,
    )
    trace = run_tuning(spec, SimExecutor(noise=0.0), make_tuner("ds2"), TuningConfig(max_steps=10))
    assert trace.meta["target_met"] and trace.meta["converged"]
    assert trace.meta["reconfigurations"] > 1
