"""Autoscaler and ContTune rules, checked against hand computation from their published defaults."""

from __future__ import annotations

import pytest

from streamtune_cli.executors.base import Observation, TraceStep
from streamtune_cli.executors.sim import SimExecutor
from streamtune_cli.spec import JobGraph
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.tuning.testing import chain_spec
from streamtune_cli.tuning.tuners import make_tuner
from streamtune_cli.tuning.tuners.autoscaler import align_to_key_groups
from streamtune_cli.tuning.tuners.conttune import processing_ability_points


def job(rate_rps: float) -> JobSpec:
    # work does 100k rec/s per instance (linear); restart 10 s
    return chain_spec([("src", "source", 1.0, 1.0), ("work", "map", 10.0, 1.0), ("sink", "sink", 1.0, 1.0)], rate_rps=rate_rps)


def observe(spec: JobSpec, parallelism: dict[str, int]) -> Observation:
    sim = SimExecutor(noise=0.0)
    sim.deploy(spec, parallelism)
    return sim.observe()


def test_autoscaler_scale_down_is_capped_at_the_max_factor() -> None:
    spec = job(50_000)
    parallelism = {"src": 1, "work": 4, "sink": 1}
    decision = make_tuner("autoscaler").propose(JobGraph(spec), parallelism, observe(spec, parallelism), [])
    # TPR = 50k / (50k / 400k) = 400k. Target capacity = 50k / 0.7 + 50k x 10 / 1800 = 71,706: factor 0.18,
    # capped at 1 - 0.6 = 0.4, so ceil(0.4 x 4) = 2 (and 400k is above the scale-down threshold
    # 50k / 0.4 + 278 = 125,278, so the vertex is outside its bounds).
    assert decision.parallelism["work"] == 2
    assert "factor 0.40" in decision.reasons["work"]


def test_autoscaler_leaves_vertices_within_the_utilization_bounds() -> None:
    spec = job(80_000)
    parallelism = {"src": 1, "work": 1, "sink": 1}
    decision = make_tuner("autoscaler").propose(JobGraph(spec), parallelism, observe(spec, parallelism), [])
    # work: TPR 100k inside [80k / 1.0, 80k / 0.4 + 444] = [80k, 200.4k]; src and sink (1M/s each) are
    # above their scale-down thresholds but already at 1, so nothing changes.
    assert decision.parallelism == parallelism and decision.converged


def test_autoscaler_scales_up_to_target_utilization() -> None:
    spec = job(150_000)
    parallelism = {"src": 1, "work": 1, "sink": 1}
    decision = make_tuner("autoscaler").propose(JobGraph(spec), parallelism, observe(spec, parallelism), [])
    # Throttled to 100k; lag after 60 s = 3M. Target capacity = 3M / 1800 + 150k x 10 / 1800 + 150k / 0.7
    # = 1,667 + 833 + 214,286 = 216,786 over TPR 100k -> ceil(2.17) = 3.
    assert decision.parallelism["work"] == 3


def test_key_group_alignment_prefers_divisors_of_max_parallelism() -> None:
    assert align_to_key_groups(5, 2, 128, 1, 128) == 8
    assert align_to_key_groups(3, 8, 128, 1, 128) == 4
    assert align_to_key_groups(100, 10, 128, 1, 128) == 128
    assert align_to_key_groups(7, 7, 128, 1, 128) == 7
    # 7 key groups, 5 wanted down from 6: no divisor in [5, 6], so step down to where the key groups per
    # instance change (7 // 3 > 7 // 5) and back up one: 4
    assert align_to_key_groups(5, 6, 7, 1, 7) == 4
    # the same search while scaling up from 4 under a cap of 6 would land on 4: keep 4, never invert
    assert align_to_key_groups(5, 4, 7, 1, 6) == 4


def steps_at(spec: JobSpec, parallelisms: list[dict[str, int]]) -> list[TraceStep]:
    return [TraceStep(step=i, parallelism=p, observation=observe(spec, p)) for i, p in enumerate(parallelisms)]


def test_conttune_big_phase_doubles_when_all_are_at_the_largest_seen() -> None:
    spec = job(900_000)
    tuner = make_tuner("conttune")
    ones = {"src": 1, "work": 1, "sink": 1}
    first = tuner.propose(JobGraph(spec), ones, observe(spec, ones), [])
    assert first.parallelism == {"src": 2, "work": 2, "sink": 2}
    mixed = {"src": 1, "work": 4, "sink": 1}
    second = tuner.propose(JobGraph(spec), mixed, observe(spec, mixed), steps_at(spec, [ones]))
    assert second.parallelism == {"src": 4, "work": 4, "sink": 4}


def test_conttune_small_phase_uses_the_gp_near_data_and_ds2_far_from_it() -> None:
    spec = job(350_000)
    tuner = make_tuner("conttune", max_distance=1)
    history = steps_at(spec, [{"src": 1, "work": 2, "sink": 1}, {"src": 1, "work": 8, "sink": 1}])
    now = {"src": 1, "work": 8, "sink": 1}
    decision = tuner.propose(JobGraph(spec), now, observe(spec, now), history)
    # demand 350k at 100k per instance: 4 instances, 2 away from the observed 2 and 8 -> DS2's ceil(3.5) = 4
    assert decision.parallelism["work"] == 4 and "DS2" in decision.reasons["work"]
    near = make_tuner("conttune", max_distance=3).propose(JobGraph(spec), now, observe(spec, now), history)
    assert near.reasons["work"].startswith("Small phase: GP lower bound")
    # conservative (mean - 1.96 std) between the observations: the 4 needed, or one more
    assert near.parallelism["work"] in (4, 5)


def test_processing_ability_uses_the_busiest_instance() -> None:
    spec = job(50_000)
    steps = [(s.parallelism, s.observation) for s in steps_at(spec, [{"src": 1, "work": 2, "sink": 1}, {"src": 1, "work": 2, "sink": 1}])]
    points = processing_ability_points("work", steps)
    assert list(points) == [2] and points[2] == pytest.approx(200_000)
