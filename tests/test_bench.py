"""Benchmark suites: suite validation with positions, regime rewriting, aggregation math, and the CLI end to end."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from streamtune_cli.bench import (
    AGGREGATE_HEADERS,
    BenchSuite,
    Regime,
    aggregate_runs,
    aggregate_table_rows,
    apply_regime,
    bench_markdown,
    oracle_aggregate,
    scale_workload,
)
from streamtune_cli.capacity import capacity_rps
from streamtune_cli.cli.app import app
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.loader import load_spec, load_spec_text
from streamtune_cli.spec.models import ConstantSchedule

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

TINY_JOB = """\
name: tiny
workload:
  rate_rps: 20000
  schedule: {kind: square, period_s: 100}
operators:
  - {id: src, kind: source, cost_us: 20}
  - {id: keyed, kind: aggregate, cost_us: 150, key: [k], key_skew: {zipf_s: 0.5, keys: 100}}
  - {id: out, kind: sink, cost_us: 10}
edges:
  - {from: src, to: keyed, partitioning: hash, key: [k]}
  - {from: keyed, to: out, partitioning: rebalance}
"""


# ---- aggregation math on hand-made rows ---------------------------------------------------------------


def _row(tuner, *, feasible=True, reconf=1, final=10, oracle=8, bp=0, met=True, conv=True, seed=0, job="j",
         regime="linear", truly=None, lag=0.0, drain_s=0.0, failure=None):
    return {
        "job": job, "job_file": f"{job}.yaml", "rate_factor": 1.0, "rate_rps": 100.0, "regime": regime,
        "seed": seed, "tuner": tuner, "level": None, "feasible": feasible, "oracle_total": oracle if feasible else None,
        "final_total": final, "ratio_to_oracle": final / oracle if feasible else None,
        "reconfigurations": reconf, "converged": conv, "target_met": met, "backpressured_windows": bp,
        "truly_keeps_up": met if truly is None else truly, "final_lag_records": lag, "drain_s": drain_s,
        "drained": drain_s is not None and drain_s <= 600, "failure": failure if failure or conv else "unconverged",
        "stop_reason": "converged" if conv else "max_steps",
    }


def test_aggregate_hand_rows():
    rows = [
        _row("ds2", reconf=2, final=12, oracle=10, bp=1, met=True, conv=True, seed=0),
        _row("ds2", reconf=4, final=9, oracle=9, bp=3, met=False, conv=False, seed=1),
        _row("ds2", reconf=1, final=30, oracle=6, bp=0, met=True, conv=True, seed=2),
        _row("ds2", feasible=False, reconf=10, final=100, bp=10, met=False, conv=False, seed=3),
        _row("conttune", reconf=3, final=20, oracle=10, bp=2, met=True, conv=False, seed=0),
    ]
    agg = aggregate_runs(rows)
    ds2 = agg["ds2"]
    assert ds2["runs"] == 3 and ds2["infeasible_runs"] == 1
    assert ds2["reconfigurations_mean"] == pytest.approx((2 + 4 + 1) / 3)
    assert ds2["reconfigurations_max"] == 4
    assert ds2["ratio_to_oracle_mean"] == pytest.approx((1.2 + 1.0 + 5.0) / 3)
    assert ds2["ratio_to_oracle_max"] == pytest.approx(5.0)
    assert ds2["final_total_mean"] == pytest.approx(17.0)
    assert ds2["backpressured_windows_mean"] == pytest.approx(4 / 3)
    assert ds2["target_met_fraction"] == pytest.approx(2 / 3)
    assert ds2["converged_fraction"] == pytest.approx(2 / 3)
    assert ds2["failed_runs"] == 1  # the unconverged feasible run; the infeasible one is listed elsewhere
    assert agg["conttune"]["ratio_to_oracle_mean"] == pytest.approx(2.0)
    assert agg["conttune"]["converged_fraction"] == 0.0
    # the oracle row: one entry per feasible case, whichever tuner ran it
    oracle = oracle_aggregate(rows)
    assert oracle["runs"] == 3  # (seed 0: 10), (seed 1: 9), (seed 2: 6); seed 3 infeasible
    assert oracle["final_total_mean"] == pytest.approx((10 + 9 + 6) / 3)
    assert oracle["ratio_to_oracle_mean"] == 1.0


def test_tuner_with_only_infeasible_runs_has_no_averages():
    agg = aggregate_runs([_row("ds2", feasible=False)], ["ds2", "autoscaler"])
    assert agg["ds2"]["runs"] == 0 and agg["ds2"]["infeasible_runs"] == 1
    assert agg["ds2"]["reconfigurations_mean"] is None and agg["ds2"]["target_met_fraction"] is None
    assert agg["autoscaler"]["runs"] == 0
    rows = aggregate_table_rows(agg)
    assert all(len(r) == len(AGGREGATE_HEADERS) for r in rows)
    assert rows[0][1] == "0" and rows[0][2] == "1"


run_rows = st.lists(
    st.builds(
        lambda tuner, feasible, reconf, final, oracle, bp, met, conv: _row(
            tuner, feasible=feasible, reconf=reconf, final=final, oracle=oracle, bp=bp, met=met, conv=conv
        ),
        st.sampled_from(["a", "b"]), st.booleans(), st.integers(0, 20), st.integers(1, 500),
        st.integers(1, 500), st.integers(0, 20), st.booleans(), st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(run_rows)
def test_aggregate_matches_statistics(rows):
    agg = aggregate_runs(rows, ["a", "b"])
    for tuner in ("a", "b"):
        ok = [r for r in rows if r["tuner"] == tuner and r["feasible"]]
        a = agg[tuner]
        assert a["runs"] == len(ok)
        assert a["infeasible_runs"] == sum(1 for r in rows if r["tuner"] == tuner and not r["feasible"])
        if not ok:
            assert a["ratio_to_oracle_mean"] is None
            continue
        ratios = [r["final_total"] / r["oracle_total"] for r in ok]
        assert a["ratio_to_oracle_mean"] == pytest.approx(statistics.fmean(ratios))
        assert a["ratio_to_oracle_max"] == pytest.approx(max(ratios))
        assert a["reconfigurations_max"] == max(r["reconfigurations"] for r in ok)
        assert a["reconfigurations_mean"] == pytest.approx(statistics.fmean(r["reconfigurations"] for r in ok))
        assert a["target_met_fraction"] == pytest.approx(sum(r["target_met"] for r in ok) / len(ok))
        assert 0.0 <= a["converged_fraction"] <= 1.0
        assert a["failed_runs"] == sum(1 for r in ok if r["failure"] is not None)


# ---- regimes and workloads ----------------------------------------------------------------------------


def test_regime_presets_and_linear_capacity():
    spec = load_spec_text(TINY_JOB)
    linear = apply_regime(spec, Regime.model_validate("linear"))
    graph = JobGraph(linear)
    for op in linear.operators:
        assert op.scaling.sigma == 0 and op.scaling.kappa == 0 and op.key_skew is None
        # linear scaling: exactly p times one instance's rate 1e6 / cost_us
        assert capacity_rps(graph, op.id, 7) == pytest.approx(7 * 1e6 / op.cost_us)


def test_skewed_regime_only_touches_hash_inputs():
    spec = load_spec_text(TINY_JOB)
    skewed = apply_regime(spec, Regime.model_validate("skewed"))
    assert skewed.operator("keyed").key_skew.zipf_s == 0.8
    assert skewed.operator("src").key_skew is None and skewed.operator("out").key_skew is None
    assert skewed.operator("keyed").scaling == spec.operator("keyed").scaling  # sub-linear: spec's scaling kept
    sublinear = apply_regime(spec, Regime.model_validate("sublinear"))
    g_skew, g_sub = JobGraph(skewed), JobGraph(sublinear)
    assert capacity_rps(g_skew, "keyed", 8) < capacity_rps(g_sub, "keyed", 8)
    kept = apply_regime(spec, Regime.model_validate({"name": "as-is", "skew": "spec"}))
    assert kept.operator("keyed").key_skew == spec.operator("keyed").key_skew
    stated = apply_regime(spec, Regime.model_validate({"name": "c", "scaling": {"sigma": 0.1, "kappa": 0.01}}))
    assert all(op.scaling.sigma == 0.1 and op.scaling.kappa == 0.01 for op in stated.operators)


def test_scale_workload():
    spec = load_spec_text(TINY_JOB)
    doubled = scale_workload(spec, 2.0)
    assert doubled.workload.rate_rps == 40000 and doubled.workload.schedule == ConstantSchedule()
    kept = scale_workload(spec, 0.5, "spec")
    assert kept.workload.rate_rps == 10000 and kept.workload.schedule.kind == "square"


def test_shipped_suites_validate():
    for name in ("quick", "full", "continuous"):
        suite = BenchSuite.model_validate(__import__("yaml").safe_load((ROOT / f"configs/bench/{name}.yaml").read_text()))
        for job in suite.jobs:
            load_spec(ROOT / "configs/bench" / job)
        # Every shipped suite also runs each job as it declares itself (its own scaling and skew).
        assert "declared" in [r.name for r in suite.regimes]
    continuous = BenchSuite.model_validate(__import__("yaml").safe_load((ROOT / "configs/bench/continuous.yaml").read_text()))
    assert continuous.protocol == "continuous" and len(continuous.rate_levels) == 10  # ContTune's protocol


def test_declared_regime_keeps_the_jobs_skew_and_scaling():
    spec = load_spec_text(TINY_JOB)
    declared = apply_regime(spec, Regime.model_validate("declared"))
    assert declared == spec


# ---- CLI ----------------------------------------------------------------------------------------------


def _tiny_suite(tmp_path: Path, **overrides) -> Path:
    (tmp_path / "jobs").mkdir(exist_ok=True)
    (tmp_path / "jobs" / "tiny.yaml").write_text(TINY_JOB)
    body = {
        "name": "tiny-suite", "jobs": ["jobs/tiny.yaml"], "rate_factors": [1.0], "regimes": ["linear", "skewed"],
        "seeds": [0], "tuners": ["ds2"], "max_steps": 6, **overrides,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


@pytest.mark.parametrize(
    "text, line_col, fragment",
    [
        ("name: s\njobs: [a.yaml]\ntuners: [ds2]\nbogus: 1\n", "4:1", "unknown field 'bogus'"),
        ("name: s\njobs: [a.yaml]\ntuners: [ds2]\nseeds: [0, 1]\nrate_factors:\n  - 1.0\n  - -2\n", "7:5", "greater than 0"),
        ("name: s\njobs: [a.yaml]\ntuners: [ds2]\nregimes:\n  - linear\n  - wobbly\n", "6:5", "unknown regime 'wobbly'"),
        ("name: s\njobs: [a.yaml\n", "3:1", "YAML syntax error"),
        ("name: s\ntuners: [ds2]\n", "1:1", "missing required field 'jobs'"),
        ("name: s\ntuners: [ds2]\njobs:\n  - nowhere.yaml\n", "4:5", "not found"),
        ("name: s\ntuners: [ds2, nosuch]\njobs: [j.yaml]\n", "2:15", "unknown tuner 'nosuch'"),
    ],
)
def test_bad_suite_exit_2_with_position(tmp_path: Path, text: str, line_col: str, fragment: str):
    (tmp_path / "j.yaml").write_text(TINY_JOB)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["bench", "--suite", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:{line_col}" in result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


BAD_SUITE_HEAD = "name: s\njobs: [j.yaml]\nregimes: [linear]\n"


@pytest.mark.parametrize(
    "tail, line_col, fragment",
    [
        # /tmp/review repros: a string where a number belongs crashed the run with a TypeError (exit 3)
        ("tuners: [ds2]\ntuner_options:\n  ds2:\n    overprovision: x\n", "7:5", "'overprovision': expected a number"),
        ("tuners: [autoscaler]\ntuner_options:\n  autoscaler:\n    utilization_boundary: x\n", "7:5", "'utilization_boundary'"),
        ("tuners: [autoscaler]\ntuner_options:\n  autoscaler: {vertex_max_parallelism: 0}\n", "6:16", "between 1 and 32768"),
        ("tuners: [ds2]\ntuner_options:\n  ds2: {overprovision: -1}\n", "6:9", "must be >= 0"),
        ("tuners: [ds2]\ntuner_options:\n  ds2:\n    bogus: 1\n", "7:5", "no option 'bogus'"),
        ("tuners: [ds2]\nseeds: [-1]\n", "5:9", "greater than or equal to 0"),
        ("tuners: [ds2]\nmax_parallelism: 100000\n", "5:1", "less than or equal to 32768"),
        ("tuners: [ds2]\nrate_factors: [.inf]\n", "5:16", "finite"),
        ("tuners: [ds2]\nnoise: 0.1\n", "5:1", "unknown field 'noise'"),
        ("tuners: [ds2]\nexecutor_options: {noise: .nan}\n", "5:20", "noise"),
        ("tuners: [ds2]\nexecutor_options: {bogus: 1}\n", "5:20", "bogus"),
        ("tuners: [ds2]\nexecutor_options: {seed: 3}\n", "5:20", "set by the bench"),
        ("tuners: [ds2]\nexecutor: nosuch\n", "5:1", "unknown executor 'nosuch'"),
        ("tuners: [ds2]\nprotocol: continuous\n", "1:1", "needs rate_levels"),
        ("tuners: [ds2]\nrate_levels: [1, 2]\n", "1:1", "only apply to protocol continuous"),
        ("tuners: [x]\nvariants:\n  x: {tuner: nosuch}\n", "6:7", "unknown tuner 'nosuch'"),
        ("tuners: [x]\nvariants:\n  x: {tuner: ds2, options: {bogus: 1}}\n", "6:29", "no option 'bogus'"),
        ("tuners: [ds2]\nvariants:\n  ds2: {tuner: conttune}\n", "6:3", "has the name of a tuner"),
        ("tuners: [x]\nvariants:\n  x: {tuner: ds2}\ntuner_options:\n  x: {bogus: 1}\n", "8:3", "is a variant"),
        ("tuners: [streamtune]\ntuner_options:\n  streamtune: {models: nowhere}\n", "6:16", "no model index"),
    ],
)
def test_bad_tuner_options_and_numbers_fail_validation_with_position(tmp_path: Path, tail: str, line_col: str, fragment: str):
    (tmp_path / "j.yaml").write_text(TINY_JOB)
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SUITE_HEAD + tail)
    for command in (["bench", "--suite", str(path)], ["validate", str(path)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert f"{path}:{line_col}" in result.output and fragment in result.output, result.output
        assert "internal error" not in result.output and "Traceback" not in result.output


def test_suite_with_spec_schedule_scores_against_the_peak_oracle(tmp_path: Path):
    # A sine with amplitude 0.5 peaks at 1.5 x the rate: the bench's oracle (and the loop's) is sized there.
    from streamtune_cli.tuning.oracle import oracle_parallelism

    suite = _tiny_suite(tmp_path, regimes=["linear"], schedule="spec", max_steps=3)
    job = tmp_path / "jobs" / "tiny.yaml"
    job.write_text(TINY_JOB.replace("{kind: square, period_s: 100}", "{kind: sine, period_s: 1200, amplitude: 0.5}"))
    out = tmp_path / "b.json"
    result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["runs"][0]
    spec = apply_regime(load_spec(job), Regime.model_validate("linear"))
    peak = oracle_parallelism(spec, 30_000)
    assert peak.total > oracle_parallelism(spec, 20_000).total  # the peak needs more than the base rate
    assert row["oracle_total"] == peak.total


def test_bad_job_in_suite_points_into_the_job_file(tmp_path: Path):
    suite = _tiny_suite(tmp_path)
    (tmp_path / "jobs" / "tiny.yaml").write_text(TINY_JOB.replace("cost_us: 150", "cost_us: -150"))
    result = runner.invoke(app, ["bench", "--suite", str(suite)])
    assert result.exit_code == 2
    line = next(i for i, l in enumerate(TINY_JOB.splitlines(), 1) if "cost_us: 150" in l)
    assert f"{tmp_path / 'jobs' / 'tiny.yaml'}:{line}:" in result.output


def test_unknown_tuner_option_is_usage_error(tmp_path: Path):
    result = runner.invoke(app, ["bench", "--suite", str(_tiny_suite(tmp_path)), "--tuners", "ds2,nosuch"])
    assert result.exit_code == 2 and "nosuch" in result.output


def test_tiny_suite_end_to_end(tmp_path: Path):
    suite = _tiny_suite(tmp_path)
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(out), "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["suite"] == "tiny-suite"
    assert len(data["runs"]) == 1 * 1 * 2 * 1 * 1
    assert {r["regime"] for r in data["runs"]} == {"linear", "skewed"}
    assert set(data["aggregates"]) == {"ds2", "oracle"}
    assert set(data["by_regime"]) == {"linear", "skewed"}
    for row in data["runs"]:
        assert row["initial_total"] == 3  # initial_parallelism 1 on three operators
        if row["feasible"]:
            assert row["ratio_to_oracle"] == pytest.approx(row["final_total"] / row["oracle_total"])
    # aggregates are the aggregation of the rows written
    assert data["aggregates"]["ds2"] == pytest.approx(aggregate_runs(data["runs"], ["ds2"])["ds2"])
    assert {"python", "platform", "elapsed_s"} <= set(data["environment"])
    text = md.read_text()
    assert "| tuner |" in text and "| ds2 |" in text and "| oracle |" in text
    assert text == bench_markdown(data)
    assert "ds2" in result.output and "oracle" in result.output


def test_same_seed_same_rows(tmp_path: Path):
    suite = _tiny_suite(tmp_path, regimes=["sublinear"])
    outs = []
    for name in ("a.json", "b.json"):
        result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outs.append(json.loads((tmp_path / name).read_text()))
    assert outs[0]["runs"] == outs[1]["runs"]
    assert outs[0]["aggregates"] == outs[1]["aggregates"]


@pytest.mark.slow
def test_quick_suite_as_documented(tmp_path: Path):
    """The command in docs/benchmarks.md: every baseline tuner and the oracle get a row."""
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--suite", str(ROOT / "configs/bench/quick.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data["aggregates"]) == {"streamtune", "ds2", "conttune", "autoscaler", "oracle"}
    assert len(data["runs"]) == 4 * 2 * 4 * 2 * 4
    # StreamTune is judged leave-one-family-out, and every one of its rows says which models it used.
    for row in (r for r in data["runs"] if r["tuner"] == "streamtune"):
        assert row["tuner_info"]["left_out"] and row["tuner_info"]["cluster"] is not None
    assert "## History models used" in bench_markdown(data)
    for case in data["infeasible"]:
        assert all(not r["feasible"] for r in data["runs"] if (r["job"], r["rate_factor"], r["regime"]) == (case["job"], case["rate_factor"], case["regime"]))


# ---- the fair bench: strict targets, ground truth, drain, protocols, failures ----------------------------


def test_a_run_that_cannot_sustain_the_peak_is_never_scored_as_meeting_it():
    # A tuner that stops one instance short of the oracle: noise can make a window look fine, the ground
    # truth cannot. judge_run must report the run as missed, whatever the loop said.
    from streamtune_cli.bench.runner import judge_run
    from streamtune_cli.executors.sim import SimExecutor
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning
    from streamtune_cli.tuning.oracle import oracle_parallelism

    spec = apply_regime(load_spec_text(TINY_JOB), Regime.model_validate("linear"))
    spec = scale_workload(spec, 1.0)
    oracle = oracle_parallelism(spec, spec.workload.rate_rps).parallelism
    short = dict(oracle, keyed=oracle["keyed"] - 1)

    class Fixed:
        name = "fixed"

        def propose(self, view, parallelism, observation, history):
            from streamtune_cli.executors.base import Decision

            return Decision(parallelism=dict(short), converged=True)

    with SimExecutor(noise=0.02, seed=1) as sim:
        trace = run_tuning(spec, sim, Fixed(), TuningConfig(max_steps=4), initial_parallelism=short)
        verdict = judge_run(trace, spec, spec.workload.rate_rps, sim.lag_records, 600.0)
    assert not verdict["truly_keeps_up"] and not verdict["converged"]
    assert verdict["failure"] in ("missed", "stalled")
    assert verdict["drain_s"] is None  # no spare capacity: the lag never drains


def test_drain_time_is_lag_over_spare_capacity_at_the_peak():
    from streamtune_cli.bench.runner import ground_truth
    from streamtune_cli.executors.sim import SimDeployment

    spec = apply_regime(load_spec_text(TINY_JOB), Regime.model_validate("linear"))
    p = {"src": 1, "keyed": 4, "out": 1}
    max_rps = SimDeployment(spec, p).max_ingest_rps
    assert max_rps == pytest.approx(4 * 1e6 / 150)  # keyed is the tightest at 4 instances
    truth = ground_truth(spec, p, 20_000, 1_000_000)
    assert truth["truly_keeps_up"] and truth["drain_s"] == pytest.approx(1_000_000 / (max_rps - 20_000))
    assert ground_truth(spec, p, 20_000, 0.0)["drain_s"] == 0.0
    assert ground_truth(spec, p, 30_000, 5.0) == {"truly_keeps_up": False, "peak_headroom": pytest.approx(max_rps / 30_000), "drain_s": None}


def test_slow_drain_is_a_failure_even_when_the_loop_converged(tmp_path: Path):
    # The same suite with an impossible drain bound: every run that converged in the loop but left lag
    # behind is a slow_drain failure, and none is counted as converged.
    suite = _tiny_suite(tmp_path, regimes=["linear"], drain_bound_s=1e-6, max_steps=8)
    out = tmp_path / "b.json"
    assert runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(out)]).exit_code == 0
    data = json.loads(out.read_text())
    row = data["runs"][0]
    assert row["stop_reason"] == "converged" and row["final_lag_records"] > 0
    assert row["failure"] == "slow_drain" and not row["converged"]
    assert data["failures"]["ds2"][0]["failure"] == "slow_drain"
    assert "## Failures by job" in bench_markdown(data) and "slow_drain" in bench_markdown(data)


def test_continuous_protocol_carries_deployment_and_tuner_over(tmp_path: Path):
    suite = _tiny_suite(tmp_path, regimes=["linear"], tuners=["ds2", "conttune"], max_steps=8)
    body = json.loads(suite.read_text())
    body.pop("rate_factors")
    body.update(protocol="continuous", rate_levels=[1.0, 2.0, 0.5])
    suite.write_text(json.dumps(body))
    out = tmp_path / "b.json"
    result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for tuner in ("ds2", "conttune"):
        rows = [r for r in data["runs"] if r["tuner"] == tuner]
        assert [r["level"] for r in rows] == [0, 1, 2]
        assert [r["rate_factor"] for r in rows] == [1.0, 2.0, 0.5]
        # Each level starts where the previous one ended (no reset to p = 1).
        for before, after in zip(rows, rows[1:]):
            assert after["initial_total"] == before["final_total"]
        assert rows[0]["initial_total"] == 3
    # Levels are cases of their own: the oracle differs with the rate.
    ds2 = [r for r in data["runs"] if r["tuner"] == "ds2"]
    assert ds2[1]["oracle_total"] > ds2[0]["oracle_total"] > ds2[2]["oracle_total"]


def test_catch_up_load_is_what_an_over_provisioned_tuner_is_paid_for():
    # After a restart the sim's sources read their backlog as fast as the DAG allows: a deployment with
    # headroom drains it, one at exactly the oracle does not. Without catch-up both would look alike.
    from streamtune_cli.executors.sim import SimExecutor

    spec = scale_workload(apply_regime(load_spec_text(TINY_JOB), Regime.model_validate("linear")), 1.0)
    lags = {}
    for name, keyed in (("tight", 3), ("roomy", 5)):  # keyed needs 20k x 150 us = 3 instances
        with SimExecutor(noise=0.0, warmup_s=0.0) as sim:
            sim.deploy(spec, {"src": 1, "keyed": keyed, "out": 1})
            sim.deploy(spec, {"src": 1, "keyed": keyed, "out": 1})  # a restart: 10 s of input waits
            obs = sim.observe()
            lags[name] = obs.lag_records
            if name == "roomy":
                assert obs.operators["keyed"].input_rate_rps > 20_000  # the backlog is real load
    assert lags["roomy"] == 0.0 and lags["tight"] > 0


def test_a_suites_models_path_is_relative_to_the_suite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from streamtune_cli.tuning.tuners.streamtune import default_models_dir

    shutil.copytree(default_models_dir(), tmp_path / "models")
    suite = _tiny_suite(tmp_path, regimes=["linear"], tuners=["st"], max_steps=3,
                        variants={"st": {"tuner": "streamtune", "options": {"models": "models"}}})
    monkeypatch.chdir(tmp_path / "jobs")  # anywhere but the suite's folder
    out = tmp_path / "b.json"
    result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["runs"][0]["tuner_info"]["cluster"] is not None


def test_out_dash_prints_the_json_and_tables_go_to_stderr(tmp_path: Path):
    suite = _tiny_suite(tmp_path)
    md = tmp_path / "bench.md"
    result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", "-", "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "streamtune.bench/2" and data["suite"] == "tiny-suite"
    assert f"wrote {md}" in result.stderr and "ds2" in result.stderr
    both = runner.invoke(app, ["bench", "--suite", str(suite), "--out", "-", "--markdown", "-"])
    assert both.exit_code == 2 and "both want stdout" in both.output


@pytest.mark.parametrize("width", [80, 160])
def test_rich_tables_fit_the_terminal_without_cutting_anything(width: int):
    import io

    from rich.console import Console

    from streamtune_cli.bench import bench_rich_tables

    result = json.loads((ROOT / "configs/gates/baseline-bench-quick.json").read_text())
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None)
    for table in bench_rich_tables(result, width=width):
        console.print(table)
    text = buffer.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    for tuner in result["aggregates"]:
        assert re.search(rf"^{tuner}\s", text, re.M)  # tuner names whole, at the start of their row
    headers_on_80 = text.count("truly") == text.count("reconfig.")
    assert headers_on_80  # every section shows both halves of the aggregate table
