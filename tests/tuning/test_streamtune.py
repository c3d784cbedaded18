"""The StreamTune tuner: a bottleneck model monotone in parallelism, online refits, history priors with
leave-one-family-out, a documented cold start, and re-convergence after a step in the rate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.executors.sim import SimExecutor
from streamtune_cli.spec.loader import load_spec
from streamtune_cli.tuning.loop import TuningConfig, run_tuning
from streamtune_cli.tuning.oracle import oracle_parallelism
from streamtune_cli.tuning.testing import chain_spec
from streamtune_cli.tuning.tuners import make_tuner
from streamtune_cli.tuning.tuners.streamtune import ScalingModel, bottleneck_probability, default_models_dir, fit_scaling

ROOT = Path(__file__).resolve().parents[2]

models = st.builds(
    ScalingModel,
    log_a_ref=st.floats(0.0, 15.0),
    p_ref=st.integers(1, 64),
    delta=st.floats(0.0, 1.0),
    delta_std=st.floats(0.0, 0.5),
    noise=st.floats(0.005, 0.2),
    source=st.just("test"),
)


@settings(max_examples=200, deadline=None)
@given(model=models, demand=st.floats(1.0, 1e8), z=st.floats(0.0, 3.0))
def test_bottleneck_probability_never_rises_with_parallelism(model: ScalingModel, demand: float, z: float) -> None:
    # For every operator model and input rate: more instances never make it more of a bottleneck.
    probabilities = [bottleneck_probability(model, p, demand, z) for p in range(1, 130)]
    assert all(b <= a + 1e-12 for a, b in zip(probabilities, probabilities[1:]))
    assert all(0.0 <= q <= 1.0 for q in probabilities)


def test_without_the_monotone_constraint_more_instances_can_look_worse() -> None:
    model = ScalingModel(log_a_ref=math.log(1000.0), p_ref=4, delta=1.4, delta_std=0.0, noise=0.02, source="test")
    monotone = [bottleneck_probability(model, p, 3500.0, 0.0) for p in (4, 8, 16)]
    free = [bottleneck_probability(model, p, 3500.0, 0.0, monotone=False) for p in (4, 8, 16)]
    assert monotone[0] >= monotone[1] >= monotone[2]
    assert free[2] > free[0]  # the ablation's model says 16 instances are worse than 4


def test_online_fit_recovers_the_scaling_exponent_and_shrinks_to_the_prior_with_one_point() -> None:
    points = [(p, math.log(5000.0) - 0.3 * math.log(p)) for p in (1, 2, 4, 8, 8)]
    fitted = fit_scaling(points, (0.0, 10.0), "prior")
    assert fitted is not None and fitted.delta == pytest.approx(0.3, abs=1e-3)
    assert fitted.source.startswith("online fit")
    single = fit_scaling([(3, math.log(800.0))], (0.25, 0.1), "prior")
    assert single is not None and single.delta == pytest.approx(0.25) and single.delta_std == pytest.approx(0.1)
    assert single.log_capacity_lo(3, 0.0) == pytest.approx(math.log(2400.0))
    assert fit_scaling([], (0.1, 0.1), "prior") is None


JOB = chain_spec(
    [("src", "source", 4.0, 1.0), ("parse", "map", 12.0, 1.0), ("agg", "aggregate", 40.0, 0.5), ("sink", "sink", 2.0, 1.0)],
    rate_rps=200_000,
    sigma=None,
    kappa=None,
)


def test_cold_start_says_so_in_every_reason_and_still_meets_the_target() -> None:
    trace = run_tuning(JOB, SimExecutor(seed=0), make_tuner("streamtune", use_models=False), TuningConfig(max_steps=8))
    assert trace.meta["target_met"] and trace.meta["stop_reason"] == "converged"
    first = trace.steps[0].decision
    assert first is not None and all("cold start" in r for op, r in first.reasons.items() if op != "sink")
    assert "cold-start prior" in first.reasons["agg"]
    oracle = oracle_parallelism(JOB).parallelism
    assert all(trace.meta["final_parallelism"][op] >= oracle[op] for op in oracle)


def test_reasons_name_the_cluster_the_probabilities_and_the_last_window() -> None:
    spec = load_spec(ROOT / "configs/nexmark/q3.yaml", check_sql_expressions=False)
    tuner = make_tuner("streamtune")
    trace = run_tuning(spec, SimExecutor(seed=0), tuner, TuningConfig(max_steps=6))
    reason = trace.steps[0].decision.reasons["auctions"]
    assert "cluster" in reason and "GED" in reason
    assert "P(bottleneck)" in reason and "at p=" in reason and "last window: busy max" in reason
    info = tuner.run_info()  # type: ignore[attr-defined]
    assert info["cluster"] is not None and info["left_out"] == []


def test_leave_one_family_out_never_uses_a_model_of_the_jobs_family() -> None:
    spec = load_spec(ROOT / "configs/nexmark/q3.yaml", check_sql_expressions=False)
    own = make_tuner("streamtune")
    left_out = make_tuner("streamtune", leave_out_family=True)
    for tuner in (own, left_out):
        run_tuning(spec, SimExecutor(seed=0), tuner, TuningConfig(max_steps=3))
    nearest = own.run_info()  # type: ignore[attr-defined]
    used = left_out.run_info()  # type: ignore[attr-defined]
    assert used["cluster"] != nearest["cluster"] and used["left_out"]
    import json

    index = json.loads((default_models_dir() / "index.json").read_text())
    by_cluster = {e["cluster"]: e["path"] for e in index["clusters"]}
    meta = json.loads((default_models_dir() / by_cluster[used["cluster"]] / "model.json").read_text())
    assert not set(meta["families"]) & set(used["left_out"])


def test_missing_shipped_models_fall_back_to_a_cold_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamtune_cli.tuning.tuners import streamtune as module

    monkeypatch.setattr(module, "default_models_dir", lambda: tmp_path / "nowhere")
    trace = run_tuning(JOB, SimExecutor(seed=0), make_tuner("streamtune"), TuningConfig(max_steps=6))
    assert "cold start: no usable pretrained models" in trace.steps[0].decision.reasons["agg"]
    assert trace.meta["target_met"]


def test_a_models_folder_given_explicitly_must_hold_models(tmp_path: Path) -> None:
    from streamtune_cli.tuning.tuners import TunerOptionError

    with pytest.raises(TunerOptionError, match="no model index"):
        make_tuner("streamtune", models=str(tmp_path))


def test_a_step_in_the_rate_is_followed_and_the_trace_shows_it() -> None:
    # The rate steps up 1.6x at t = 300 s, after the first tuning has settled: the tuner sees the job fall
    # behind, rescales, and ends keeping up at the new rate.
    spec = JOB.model_copy(
        update={"workload": JOB.workload.model_copy(update={"schedule": {"kind": "step", "steps": [{"at_s": 300, "factor": 1.6}]}})}
    )
    spec = type(JOB).model_validate(spec.model_dump(by_alias=True))
    trace = run_tuning(spec, SimExecutor(seed=0), make_tuner("streamtune"), TuningConfig(max_steps=12))
    times = [s.observation.t_s for s in trace.steps]
    after = [s for s in trace.steps if s.observation.t_s > 300]
    assert after and any(s.observation.backpressured for s in after), times
    behind = next(i for i, s in enumerate(trace.steps) if s.observation.t_s > 300 and s.observation.backpressured)
    assert trace.steps[behind].decision.parallelism != trace.steps[behind].parallelism  # it reacts
    assert trace.meta["stop_reason"] == "converged" and trace.meta["target_met"]
    assert trace.steps[-1].observation.target_rate_rps == pytest.approx(200_000 * 1.6)


def test_a_tampered_model_named_by_the_user_is_one_clear_error(tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from streamtune_cli.cli.app import app

    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models)
    for weights in models.glob("cluster-*/weights.pt"):
        data = bytearray(weights.read_bytes())
        data[100] ^= 0xFF
        weights.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["tune", str(ROOT / "configs/nexmark/q3.yaml"), "--models", str(models), "--max-steps", "2"])
    assert result.exit_code == 2 and "checksum" in result.output and "Traceback" not in result.output
