"""The tuning loop: bounds, stop rules, dry run, trace metadata, and the forward -> rebalance retargeting."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamtune_cli.errors import UsageError
from streamtune_cli.executors.base import (
    Decision,
    Observation,
    OperatorMetrics,
    Parallelism,
    TraceStep,
)
from streamtune_cli.executors.sim import SimExecutor, spec_dir_of
from streamtune_cli.spec import (
    JobGraph,
    dump_spec,
    load_spec,
    load_spec_text,
    spec_to_data,
)
from streamtune_cli.spec.models import JobSpec, Partitioning
from streamtune_cli.tuning.loop import (
    TuningConfig,
    clamp_parallelism,
    covers_peak,
    retarget_parallelism,
    run_tuning,
)
from streamtune_cli.tuning.oracle import oracle_parallelism
from streamtune_cli.tuning.parallelism import parse_parallelism
from streamtune_cli.tuning.testing import chain_spec
from streamtune_cli.tuning.tuners import TUNER_NAMES, make_tuner

ROOT = Path(__file__).resolve().parents[2]
JOB = chain_spec(
    [("src", "source", 2.0, 1.0), ("a", "map", 10.0, 1.0), ("b", "map", 5.0, 1.0), ("sink", "sink", 4.0, 1.0)],
    rate_rps=150_000,
    max_parallelism=16,
)


class SpyExecutor(SimExecutor):
    """The sim, recording every deployment."""

    def __init__(self, **kw: object) -> None:
        super().__init__(noise=0.0, **kw)  # type: ignore[arg-type]
        self.deployed: list[dict[str, int]] = []

    def deploy(self, job: JobSpec, parallelism: Parallelism) -> None:
        self.deployed.append(dict(parallelism))
        super().deploy(job, parallelism)


class FixedTuner:
    """Always proposes the same map (or `current x factor` when given a factor)."""

    name = "fixed"

    def __init__(self, proposal: dict[str, int] | None = None, factor: int | None = None, converged: bool = False):
        self.proposal, self.factor, self.converged = proposal, factor, converged
        self.histories: list[int] = []

    def propose(self, graph: JobGraph, parallelism: Parallelism, observation: Observation, history: list[TraceStep]) -> Decision:
        self.histories.append(len(history))
        if self.factor is not None:
            target = {op: p * self.factor for op, p in parallelism.items()}
        else:
            target = {**parallelism, **(self.proposal or {})}
        return Decision(parallelism=target, reasons={op: "fixed" for op in target}, summary="fixed", converged=self.converged)


def test_clamp_applies_cap_and_change_factor_and_says_why() -> None:
    current = {"src": 3, "a": 3, "b": 3, "sink": 3}
    config = TuningConfig(max_parallelism=8, max_change_factor=2.0)
    clamped, notes = clamp_parallelism(JOB, current, {"src": 10, "a": 1, "b": 7, "sink": 3}, config)
    assert clamped == {"src": 6, "a": 2, "b": 6, "sink": 3}
    assert "max change factor 2" in notes["src"] and "clamped from 10 to 6" in notes["src"]
    assert "clamped from 1 to 2" in notes["a"] and set(notes) == {"src", "a", "b"}
    clamped, notes = clamp_parallelism(JOB, current, {"src": 40}, TuningConfig(max_parallelism=8))
    assert clamped["src"] == 8 and "max parallelism 8" in notes["src"]
    clamped, _ = clamp_parallelism(JOB, current, {"src": 40}, TuningConfig())
    assert clamped["src"] == 16  # the operator's own max_parallelism


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_steps": 0},
        {"max_parallelism": 0},
        {"max_parallelism": 32769},
        {"max_change_factor": 0.5},
        {"max_change_factor": float("inf")},
        {"max_change_factor": float("nan")},
        {"stop_after_stable": 0},
        {"stall_patience": 0},
    ],
)
def test_config_rejects_nonsense(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        TuningConfig(**kwargs)


def test_dry_run_proposes_once_and_deploys_once() -> None:
    executor = SpyExecutor()
    trace = run_tuning(JOB, executor, FixedTuner({"a": 2}), TuningConfig(dry_run=True))
    assert len(trace.steps) == 1 and executor.deployed == [JOB.parallelism]
    assert trace.meta["stop_reason"] == "dry_run" and trace.meta["reconfigurations"] == 0
    assert trace.meta["recommended_parallelism"]["a"] == 2 and trace.meta["final_parallelism"]["a"] == 1


def test_stops_when_nothing_changes_and_the_job_keeps_up() -> None:
    executor = SpyExecutor()
    fits = {"src": 1, "a": 2, "b": 1, "sink": 1}
    trace = run_tuning(JOB, executor, FixedTuner(fits), TuningConfig(), seed=7)
    assert executor.deployed == [JOB.parallelism, fits]
    assert trace.meta["stop_reason"] == "converged" and trace.meta["converged"] and trace.meta["target_met"]
    assert trace.meta["reconfigurations"] == 1 and trace.meta["backpressured_windows"] == 1
    assert trace.meta["final_parallelism"] == fits and trace.meta["oracle"]["parallelism"] == fits
    assert trace.spec == spec_to_data(JOB) and trace.seed == 7 and trace.executor == "sim" and trace.tuner == "fixed"
    # stop_after_stable = 3 re-observes the stable deployment twice more without redeploying
    executor = SpyExecutor()
    trace = run_tuning(JOB, executor, FixedTuner(fits), TuningConfig(stop_after_stable=3))
    assert len(trace.steps) == 4 and len(executor.deployed) == 2 and trace.meta["converged"]


def test_history_grows_by_one_step_per_proposal() -> None:
    tuner = FixedTuner(factor=2)
    trace = run_tuning(JOB, SpyExecutor(), tuner, TuningConfig(max_steps=4))
    assert tuner.histories == [0, 1, 2, 3]
    assert [s.step for s in trace.steps] == [0, 1, 2, 3]


def test_max_steps_never_deploys_an_unobserved_configuration() -> None:
    executor = SpyExecutor()
    trace = run_tuning(JOB, executor, FixedTuner(factor=2), TuningConfig(max_steps=3))
    assert trace.meta["stop_reason"] == "max_steps" and not trace.meta["converged"]
    assert trace.meta["reconfigurations"] == 2 and len(executor.deployed) == 3
    assert trace.meta["final_parallelism"] == trace.steps[-1].parallelism == {"src": 4, "a": 4, "b": 4, "sink": 4}
    assert trace.meta["recommended_parallelism"] == {"src": 8, "a": 8, "b": 8, "sink": 8}


def test_backpressured_without_change_stops_as_stalled_or_at_bounds() -> None:
    executor = SpyExecutor()
    trace = run_tuning(JOB, executor, FixedTuner(), TuningConfig())
    assert trace.meta["stop_reason"] == "stalled" and not trace.meta["target_met"]
    # a second window (stall_patience 2) before giving up, without a restart
    assert len(trace.steps) == 2 and len(executor.deployed) == 1
    assert len(run_tuning(JOB, SpyExecutor(), FixedTuner(), TuningConfig(stall_patience=1)).steps) == 1
    trace = run_tuning(JOB, SpyExecutor(), FixedTuner({"a": 5}), TuningConfig(max_parallelism=1))
    assert trace.meta["stop_reason"] == "at_bounds"
    assert "clamped from 5 to 1" in trace.steps[0].decision.reasons["a"]


def test_initial_parallelism_is_used_and_capped() -> None:
    executor = SpyExecutor()
    run_tuning(JOB, executor, FixedTuner(), TuningConfig(max_parallelism=4), initial_parallelism={"a": 9})
    assert executor.deployed[0] == {"src": 1, "a": 4, "b": 1, "sink": 1}
    with pytest.raises(UsageError, match="unknown operator 'zz'"):
        run_tuning(JOB, SpyExecutor(), FixedTuner(), initial_parallelism={"zz": 2})


def test_retarget_turns_unequal_forward_edges_into_rebalance_and_back() -> None:
    spec = load_spec(ROOT / "configs/nexmark/q5.yaml", check_sql_expressions=False)
    changed = retarget_parallelism(spec, {"auction_time": 5})
    parts = {(e.src, e.dst): e.partitioning for e in changed.edges}
    assert parts[("bids", "auction_time")] == Partitioning.rebalance
    assert parts[("auction_time", "bids_per_auction")] == Partitioning.hash
    assert changed.operator("auction_time").parallelism == 5
    # the result is a valid spec: it passes every loader rule
    load_spec_text(dump_spec(changed), check_sql_expressions=False)
    again = retarget_parallelism(spec, {"auction_time": 2})
    assert {(e.src, e.dst): e.partitioning for e in again.edges}[("bids", "auction_time")] == Partitioning.forward


def test_parse_parallelism() -> None:
    assert parse_parallelism("a=2, b = 10") == {"a": 2, "b": 10}
    for bad, message in [("a=2,b", "column 5"), ("a=x", "not an integer"), ("a=0", ">= 1"), ("a=1,a=2", "twice"), ("", "empty")]:
        with pytest.raises(UsageError, match=message):
            parse_parallelism(bad)


def test_a_global_cap_never_lifts_an_operator_above_its_own_max_parallelism() -> None:
    clamped, notes = clamp_parallelism(JOB, JOB.parallelism, {"a": 500}, TuningConfig(max_parallelism=1000))
    assert clamped["a"] == 16 and "max parallelism 16" in notes["a"]


Q8 = ROOT / "configs/nexmark/q8.yaml"


def _window(target: float, busy_max: float, achieved: float | None = None) -> Observation:
    m = OperatorMetrics(
        operator="a", parallelism=2, input_rate_rps=target, output_rate_rps=target, busy=busy_max, busy_max=busy_max,
        idle=1 - busy_max, backpressured=0.0, backpressured_max=0.0,
        true_processing_rate_rps=target / busy_max, true_output_rate_rps=target / busy_max,
    )
    return Observation(
        t_s=60, window_s=30, target_rate_rps=target, achieved_rate_rps=target if achieved is None else achieved,
        lag_records=0, operators={"a": m},
    )


def test_covers_peak_extrapolates_the_busiest_instance_to_the_peak() -> None:
    assert covers_peak(_window(200.0, 0.99), 200.0)  # at the peak: keeping up is enough
    assert not covers_peak(_window(200.0, 1.0, achieved=150.0), 200.0)  # backpressured
    assert covers_peak(_window(100.0, 0.45), 200.0)  # 0.9 at the peak
    assert covers_peak(_window(100.0, 0.5), 200.0)  # exactly full at the peak
    assert not covers_peak(_window(100.0, 0.51), 200.0)  # 1.02 at the peak: no 2% allowance when extrapolating


def _q8_trace(tuner: str, seed: int = 0):
    spec = load_spec(Q8, check_sql_expressions=False)
    return spec, run_tuning(spec, SimExecutor(seed=seed, spec_dir=spec_dir_of(Q8)), make_tuner(tuner), TuningConfig(), seed=seed)


@pytest.mark.parametrize("tuner", TUNER_NAMES)
def test_a_trough_is_not_convergence(tuner: str) -> None:
    # q8: square wave, period 600 s, low half (x0.5) first. The first windows all run at 100,000 rec/s,
    # where 7 instances keep up; at the 200,000 rec/s peak new_users needs 3 instances (oracle 8). The
    # session must not stop in the trough, and oracle and target_met are judged at the peak.
    spec, trace = _q8_trace(tuner)
    meta = trace.meta
    peak_oracle = oracle_parallelism(spec, 200_000)
    assert meta["peak_target_rate_rps"] == 200_000
    assert meta["oracle"]["parallelism"] == peak_oracle.parallelism and meta["oracle"]["total"] == 8
    assert meta["oracle"]["rate_rps"] == 200_000
    assert trace.steps[0].observation.target_rate_rps == 100_000
    if meta["converged"]:
        # it converged on a window that covers the peak, with enough instances for it
        assert covers_peak(trace.steps[-1].observation, 200_000)
        assert meta["target_met"]
        for op in spec.operators:
            assert meta["final_parallelism"][op.id] >= peak_oracle.parallelism[op.id]
    else:
        assert meta["stop_reason"] != "converged"


def test_q8_sessions_reach_the_peak_and_size_for_it() -> None:
    for tuner in ("ds2", "autoscaler"):
        spec, trace = _q8_trace(tuner)
        meta = trace.meta
        assert meta["stop_reason"] == "converged" and meta["target_met"]
        assert meta["final_total"] >= 8  # 7 was the trough's answer
        assert any(s.observation.target_rate_rps == 200_000 for s in trace.steps)


def test_target_met_is_judged_at_the_peak_not_at_the_last_window() -> None:
    # Stop in the trough by budget: the last window kept up at 100,000 rec/s, but the deployment's busiest
    # instance would be over capacity at the 200,000 rec/s peak, so the target is not met.
    spec = load_spec(Q8, check_sql_expressions=False)
    trough = {op.id: 1 for op in spec.operators} | {"new_users": 2}
    trace = run_tuning(
        spec, SimExecutor(noise=0.0, spec_dir=spec_dir_of(Q8)), FixedTuner(), TuningConfig(max_steps=2),
        initial_parallelism=trough,
    )
    meta = trace.meta
    assert not trace.steps[-1].observation.backpressured and meta["last_window_kept_up"]
    assert meta["final_target_rate_rps"] == 100_000 and meta["stop_reason"] == "max_steps"
    assert not meta["target_met"] and not meta["converged"]


def test_an_explicit_peak_target_overrides_the_executors() -> None:
    fits = {"src": 1, "a": 2, "b": 1, "sink": 1}
    trace = run_tuning(JOB, SpyExecutor(), FixedTuner(fits), TuningConfig(max_steps=3), peak_target_rate_rps=1e6)
    assert trace.meta["peak_target_rate_rps"] == 1e6 and not trace.meta["converged"] and not trace.meta["target_met"]
    assert trace.meta["oracle"]["rate_rps"] == 1e6
    with pytest.raises(UsageError, match="peak target"):
        run_tuning(JOB, SpyExecutor(), FixedTuner(), peak_target_rate_rps=float("nan"))
