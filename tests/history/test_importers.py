"""Tuning traces become history runs; malformed traces are refused with a message that names the file."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from streamtune_cli.executors.base import Observation, OperatorMetrics, Trace, TraceStep
from streamtune_cli.executors.sim import SimExecutor
from streamtune_cli.history.importers import add_trace, load_trace
from streamtune_cli.history.store import HistoryError, HistoryStore
from streamtune_cli.spec import load_spec, spec_to_data
from streamtune_cli.tuning.loop import run_tuning
from streamtune_cli.tuning.tuners import make_tuner

ROOT = Path(__file__).resolve().parents[2]


def _metrics(op: str, p: int, busy: float, bp: float = 0.0) -> OperatorMetrics:
    return OperatorMetrics(
        operator=op, parallelism=p, input_rate_rps=1000.0, output_rate_rps=900.0, busy=busy, busy_max=busy,
        idle=max(0.0, 1 - busy - bp), backpressured=bp, backpressured_max=bp,
        true_processing_rate_rps=1000.0 / max(busy, 1e-9), true_output_rate_rps=900.0 / max(busy, 1e-9),
    )


def hand_trace() -> Trace:
    """Two windows of configs/synthetic/linear_chain.yaml: the first with a bottleneck, the second without."""
    spec = load_spec(ROOT / "configs/synthetic/linear_chain.yaml")
    ops = [op.id for op in spec.operators]
    steps = []
    for step, busy in enumerate([0.97, 0.5]):
        metrics = {op: _metrics(op, 2, 0.3, 0.6 if busy > 0.9 else 0.0) for op in ops}
        metrics[ops[1]] = _metrics(ops[1], 2, busy)
        obs = Observation(
            t_s=60.0 * (step + 1), window_s=30.0, target_rate_rps=1000.0, achieved_rate_rps=800.0 if busy > 0.9 else 1000.0,
            lag_records=10.0, latency_ms=None, operators=metrics,
        )
        steps.append(TraceStep(step=step, parallelism={op: 2 for op in ops}, observation=obs))
    return Trace(job=spec.name, spec=spec_to_data(spec), executor="sim", tuner="ds2", seed=3, steps=steps, meta={"family": "chain"})


def write(path: Path, trace: Trace) -> Path:
    path.write_text(trace.model_dump_json(indent=2))
    return path


def test_a_hand_built_trace_becomes_one_run_with_labels(tmp_path: Path) -> None:
    trace = hand_trace()
    added = add_trace(write(tmp_path / "t.json", trace), tmp_path / "h")
    assert added.added and added.windows == 2
    store = HistoryStore.open(tmp_path / "h")
    runs = store.scan("runs").collect().to_dicts()
    assert len(runs) == 1
    run = runs[0]
    assert (run["origin"], run["tuner"], run["seed"], run["family"], run["n_windows"]) == ("trace", "ds2", 3, "chain", 2)
    rows = store.scan("rows").collect()
    assert rows.height == 2 * len(trace.spec["operators"])
    hot = trace.spec["operators"][1]["id"]
    labelled = rows.filter(pl.col("bottleneck")).select("window", "operator").rows()
    assert labelled == [(0, hot)]
    first = rows.filter((pl.col("window") == 0) & (pl.col("operator") == hot)).to_dicts()[0]
    assert first["busy_max"] == pytest.approx(0.97, rel=1e-6)
    assert first["achieved_rate_rps"] == pytest.approx(800.0)


def test_adding_the_same_trace_twice_adds_it_once(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", hand_trace())
    assert add_trace(path, tmp_path / "h").added
    again = add_trace(path, tmp_path / "h")
    assert not again.added
    assert len(HistoryStore.open(tmp_path / "h").run_ids()) == 1


def test_a_real_tuning_trace_imports_with_its_parallelism_per_window(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "configs/nexmark/q5.yaml")
    executor = SimExecutor(seed=1)
    try:
        trace = run_tuning(spec, executor, make_tuner("ds2"), seed=1)
    finally:
        executor.close()
    added = add_trace(write(tmp_path / "q5.json", trace), tmp_path / "h")
    rows = HistoryStore.open(tmp_path / "h").scan("rows").sort("window", "operator").collect()
    assert rows["window"].max() == len(trace.steps) - 1 == added.windows - 1
    for step in trace.steps:
        got = dict(rows.filter(pl.col("window") == step.step).select("operator", "parallelism").rows())
        assert got == {op: m.parallelism for op, m in step.observation.operators.items()}
    # the first window of an untuned q5 is backpressured, so it has a bottleneck
    assert trace.steps[0].observation.backpressured
    assert rows.filter((pl.col("window") == 0) & pl.col("bottleneck")).height >= 1


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"job": "x",\n  "spec": [1, 2,\n}', r"t\.json:3:1: invalid JSON"),
        ("[1, 2]", r"t\.json: not a tuning trace: expected a JSON object"),
        ('{"job": "x"}', r"t\.json:1:1: not a valid tuning trace: spec: Field required \(and 2 more problems\)"),
        ('{"format_version": 7, "job": "x"}', r"t\.json:1:20: trace format version 7 is newer"),
    ],
)
def test_malformed_trace_files_are_named(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(HistoryError, match=expected) as info:
        load_trace(path)
    assert info.value.exit_code == 2


def test_a_trace_without_steps_or_with_a_broken_spec_is_refused(tmp_path: Path) -> None:
    trace = hand_trace()
    empty = write(tmp_path / "empty.json", trace.model_copy(update={"steps": []}))
    with pytest.raises(HistoryError, match=r"empty\.json: trace has no steps"):
        add_trace(empty, tmp_path / "h")
    spec = dict(trace.spec)
    spec["edges"] = spec["edges"] + [{"from": spec["operators"][-1]["id"], "to": spec["operators"][0]["id"]}]
    broken = write(tmp_path / "broken.json", trace.model_copy(update={"spec": spec}))
    with pytest.raises(HistoryError, match=r"broken\.json: the trace's embedded job spec is invalid"):
        add_trace(broken, tmp_path / "h")
    assert not (tmp_path / "h").exists() or not HistoryStore.open(tmp_path / "h").run_ids()


def test_observations_of_unknown_operators_are_refused(tmp_path: Path) -> None:
    trace = hand_trace()
    step = trace.steps[0]
    operators = dict(step.observation.operators)
    operators["ghost"] = _metrics("ghost", 1, 0.1)
    bad_step = step.model_copy(update={"observation": step.observation.model_copy(update={"operators": operators})})
    path = write(tmp_path / "ghost.json", trace.model_copy(update={"steps": [bad_step]}))
    with pytest.raises(HistoryError, match=r"ghost\.json:\d+:\d+: steps\.0\.observation\.operators names operators the job spec does not have: 'ghost'"):
        add_trace(path, tmp_path / "h")


def test_trace_json_round_trips_through_the_loader(tmp_path: Path) -> None:
    trace = hand_trace()
    loaded = load_trace(write(tmp_path / "t.json", trace))
    assert loaded == trace
    assert json.loads(loaded.model_dump_json())["steps"][0]["observation"]["operators"]


def test_a_deeply_nested_trace_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    with pytest.raises(HistoryError, match=r"deep\.json: tuning trace is nested too deeply") as info:
        load_trace(path)
    assert info.value.exit_code == 2


# (what is wrong, how to break window 1 of hand_trace() as plain JSON data, the expected message part)
HOT = "stage01"  # the second operator of configs/synthetic/linear_chain.yaml
BAD_OBSERVATIONS = [
    ("NaN lag", lambda obs: obs.update(lag_records=float("nan")), None, "lag_records nan is not a finite number"),
    ("infinite rate", lambda obs: obs["operators"][HOT].update(input_rate_rps=float("inf")), HOT, "input_rate_rps inf is not a finite number"),
    ("negative rate", lambda obs: obs.update(achieved_rate_rps=-1.0), None, "achieved_rate_rps -1 is negative"),
    ("negative busy", lambda obs: obs["operators"][HOT].update(busy=-5), HOT, "busy -5 is negative"),
    ("busy above 1", lambda obs: obs["operators"][HOT].update(busy_max=1.5), HOT, "busy_max 1.5 is above 1"),
    ("missing operator", lambda obs: obs["operators"].pop(HOT), None, "lacks spec operator(s) 'stage01'"),
    ("empty operators", lambda obs: obs.update(operators={}), None, "no operators (empty operators map)"),
    ("operator field disagrees", lambda obs: obs["operators"][HOT].update(operator="zzz"), HOT, "its metrics say operator 'zzz', not 'stage01'"),
    ("huge parallelism", lambda obs: obs["operators"][HOT].update(parallelism=10**30), HOT, "(31 digits) is outside 1..32768"),
    ("zero parallelism", lambda obs: obs["operators"][HOT].update(parallelism=0), HOT, "parallelism 0 is outside 1..32768"),
]


def _broken_trace_data(breaker) -> dict:  # noqa: ANN001
    data = json.loads(hand_trace().model_dump_json())
    breaker(data["steps"][1]["observation"])
    return data


@pytest.mark.parametrize("name, breaker, operator, message", BAD_OBSERVATIONS, ids=[c[0] for c in BAD_OBSERVATIONS])
def test_impossible_measurements_are_refused_naming_step_and_operator(
    tmp_path: Path, name: str, breaker, operator: str | None, message: str  # noqa: ANN001
) -> None:
    """Through the whole import: exit 2, the file, the step and the operator named, nothing written.

    The trace model may reject some of these values itself (then pydantic names the same step and
    operator by its field path); either way the history must not receive them.
    """
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_broken_trace_data(breaker)))
    with pytest.raises(HistoryError) as info:
        add_trace(path, tmp_path / "h")
    text = str(info.value)
    assert info.value.exit_code == 2 and str(path) in text
    assert "steps[1] (step 1)" in text or "steps.1." in text, text
    if operator is not None:
        assert repr(operator) in text or f".{operator}." in text, text
    assert not (tmp_path / "h").exists() or not HistoryStore.open(tmp_path / "h").run_ids()


@pytest.mark.parametrize("name, breaker, operator, message", BAD_OBSERVATIONS, ids=[c[0] for c in BAD_OBSERVATIONS])
def test_observation_checks_word_each_problem(name: str, breaker, operator: str | None, message: str) -> None:  # noqa: ANN001
    """The importer's own checks, on a trace that skipped model validation (as a foreign writer's could)."""
    from streamtune_cli.history.importers import observation_problems

    trace = hand_trace()
    data = _broken_trace_data(breaker)
    obs_data = data["steps"][1]["observation"]
    operators = {key: OperatorMetrics.model_construct(**m) for key, m in obs_data.pop("operators").items()}
    observation = Observation.model_construct(**obs_data, operators=operators)
    step = trace.steps[1].model_copy(update={"observation": observation})
    broken = trace.model_copy(update={"steps": [trace.steps[0], step]})
    spec = load_spec(ROOT / "configs/synthetic/linear_chain.yaml")
    [problem] = observation_problems(broken, spec, "t.json")
    where = "steps[1] (step 1)" + (f", operator {operator!r}" if operator else "")
    assert str(problem).startswith(f"t.json: {where}: "), str(problem)
    assert message in problem.message


def test_a_sound_trace_has_no_observation_problems() -> None:
    from streamtune_cli.history.importers import observation_problems

    trace = hand_trace()
    assert observation_problems(trace, load_spec(ROOT / "configs/synthetic/linear_chain.yaml"), "t.json") == []


def test_fractions_may_overshoot_by_float_rounding_only() -> None:
    from streamtune_cli.history.importers import observation_problems

    trace = hand_trace()
    spec = load_spec(ROOT / "configs/synthetic/linear_chain.yaml")

    def with_busy(value: float) -> Trace:
        step = trace.steps[0]
        operators = dict(step.observation.operators)
        operators[HOT] = operators[HOT].model_copy(update={"busy": value, "busy_max": value})
        observation = step.observation.model_copy(update={"operators": operators})
        return trace.model_copy(update={"steps": [step.model_copy(update={"observation": observation})]})

    for fine in (0.0, 1.0, 1 + 1e-9, -1e-9):
        assert observation_problems(with_busy(fine), spec, "t.json") == [], fine
    for bad in (1.01, -0.01):
        assert len(observation_problems(with_busy(bad), spec, "t.json")) == 2  # busy and busy_max
