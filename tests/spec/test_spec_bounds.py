"""Numeric bounds where numbers enter the spec (issue 15, docs/spec.md "Numeric bounds"): out-of-range values
are errors at their position with a short quote, and every value inside the ranges runs through the sim, the
oracle and the tuners without an overflow."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.errors import SpecError, StreamtuneError
from streamtune_cli.executors.sim import SimExecutor, steady_state
from streamtune_cli.spec import load_spec_text
from streamtune_cli.spec import models as m
from streamtune_cli.testing.strategies import job_spec_data
from streamtune_cli.tuning.loop import TuningConfig, run_tuning
from streamtune_cli.tuning.oracle import oracle_parallelism
from streamtune_cli.tuning.tuners import make_tuner

# Every bounded field on its own line, so a test can name the line an error must point at.
BASE = """\
name: bounds
restart_s: 10
workload:
  rate_rps: 1000
  schedule:
    kind: step
    steps:
      - at_s: 0
        factor: 1.0
operators:
  - id: src
    kind: source
    cost_us: 2.0
    rate_share: 1
  - id: agg
    kind: window_aggregate
    cost_us: 3.0
    selectivity: 0.5
    record_bytes: 64
    key_skew:
      zipf_s: 1.0
      keys: 100
    window:
      type: hop
      size_s: 10
      slide_s: 2
  - id: sink
    kind: sink
edges:
  - {from: src, to: agg, partitioning: hash, key: [k]}
  - {from: agg, to: sink}
"""

# field line in BASE -> (a value just outside each end of its range)
OUT_OF_RANGE = {
    "restart_s: 10": ["-1", "86401"],
    "rate_rps: 1000": ["0", "0.0000009", "1.1e10"],
    "at_s: 0": ["-1", "1.1e9"],
    "factor: 1.0": ["0", "0.0009", "1000.1"],
    "cost_us: 2.0": ["0", "0.0009", "1.1e9"],
    "rate_share: 1": ["0", "1.1e6"],
    "selectivity: 0.5": ["-0.1", "10000.1"],
    "record_bytes: 64": ["-1", str(2**30 + 1)],
    "zipf_s: 1.0": ["-0.1", "5.1"],
    "keys: 100": ["0", "1000001"],
    "size_s: 10": ["0", "0.0009", "1.1e9"],
}


def problem_at(text: str, needle: str) -> tuple[int, int]:
    index = text.index(needle)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def test_the_base_spec_is_valid() -> None:
    spec = load_spec_text(BASE)
    assert spec.operator("agg").window.size_s == 10


@pytest.mark.parametrize(
    ("line", "value"), [(line, value) for line, values in OUT_OF_RANGE.items() for value in values]
)
def test_out_of_range_values_are_errors_at_their_line(line: str, value: str) -> None:
    field = line.split(":")[0]
    text = BASE.replace(line, f"{field}: {value}", 1)
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    lines = {(p.location.line, p.location.column) for p in info.value.problems}
    assert problem_at(text, f"{field}: {value}") in lines, str(info.value)


@pytest.mark.parametrize("value", ["1e308", "1.0e308", "-1e308", "1" + "0" * 300, "9" * 400, "9" * 5000, ".nan", "-.inf"])
@pytest.mark.parametrize("line", ["cost_us: 2.0", "selectivity: 0.5", "rate_rps: 1000", "factor: 1.0", "record_bytes: 64"])
def test_huge_numbers_are_errors_with_a_short_quote(line: str, value: str) -> None:
    field = line.split(":")[0]
    text = BASE.replace(line, f"{field}: {value}", 1)
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    message = str(info.value)
    assert problem_at(text, f"{field}: {value}")[0] in {p.location.line for p in info.value.problems}
    assert len(message) < 400, message  # never the 5,000 digits


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("rate_rps: 1000", str(m.MAX_RATE_RPS)),
        ("rate_rps: 1000", str(m.MIN_RATE_RPS)),
        ("factor: 1.0", str(m.MAX_RATE_FACTOR)),
        ("cost_us: 2.0", str(m.MIN_COST_US)),
        ("cost_us: 2.0", str(m.MAX_COST_US)),
        ("selectivity: 0.5", "0"),
        ("record_bytes: 64", str(m.MAX_RECORD_BYTES)),
        ("restart_s: 10", str(m.MAX_RESTART_S)),
        ("size_s: 10", str(m.MAX_SECONDS)),
    ],
)
def test_the_ends_of_each_range_are_valid(line: str, value: str) -> None:
    field = line.split(":")[0]
    load_spec_text(BASE.replace(line, f"{field}: {value}", 1))


def _chain(selectivities: list[float], rate: float = 1e6, partitioning: str = "forward") -> str:
    ops = ["  - {id: src, kind: source}"]
    edges = []
    previous = "src"
    for i, selectivity in enumerate(selectivities):
        ops.append(f"  - {{id: f{i}, kind: flat_map, selectivity: {selectivity}}}")
        edges.append(f"  - {{from: {previous}, to: f{i}, partitioning: {partitioning}}}")
        previous = f"f{i}"
    ops.append("  - {id: sink, kind: sink}")
    edges.append(f"  - {{from: {previous}, to: sink}}")
    return f"name: chain\nworkload: {{rate_rps: {rate}}}\noperators:\n" + "\n".join(ops) + "\nedges:\n" + "\n".join(edges) + "\n"


def test_selectivities_that_multiply_past_the_demand_bound_are_refused_at_the_first_operator_over_it() -> None:
    # 1e6 rec/s x 1e4 x 1e4 = 1e14 at f2's input (allowed), x 1e4 = 1e18 at f3's (refused); f4 after it
    # is not reported again.
    text = _chain([1e4, 1e4, 1e4, 1.0])
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert "operator f3 " in problem.message and "1e+18 records/s" in problem.message and "1e+15" in problem.message
    assert problem.location.line == problem_at(text, "{id: f3")[0]
    load_spec_text(_chain([1e4, 1e4, 1.0]))  # 1e14: inside


def test_converging_paths_count_towards_the_demand_bound() -> None:
    # Sixty diamonds double the rate sixty times: 2^60 x 1e3 rec/s, about 1.2e21, with every number small.
    ops = ["  - {id: n0, kind: source}"]
    edges = []
    for i in range(60):
        ops += [f"  - {{id: a{i}, kind: map}}", f"  - {{id: b{i}, kind: map}}", f"  - {{id: n{i + 1}, kind: map}}"]
        edges += [
            f"  - {{from: n{i}, to: a{i}, partitioning: rebalance}}",
            f"  - {{from: n{i}, to: b{i}, partitioning: rebalance}}",
            f"  - {{from: a{i}, to: n{i + 1}, partitioning: rebalance}}",
            f"  - {{from: b{i}, to: n{i + 1}, partitioning: rebalance}}",
        ]
    ops.append("  - {id: sink, kind: sink}")
    edges.append("  - {from: n60, to: sink}")
    text = "name: diamonds\nworkload: {rate_rps: 1000}\noperators:\n" + "\n".join(ops) + "\nedges:\n" + "\n".join(edges) + "\n"
    with pytest.raises(SpecError, match="converging paths"):
        load_spec_text(text)


def test_broadcast_edges_count_at_max_parallelism() -> None:
    # A tuner may raise the consumer to its max_parallelism: the bound holds for every deployment.
    text = _chain([1e4, 1.0], rate=1e10, partitioning="broadcast").replace(
        "{id: f1, kind: flat_map", "{id: f1, kind: flat_map, max_parallelism: 32768"
    )
    with pytest.raises(SpecError, match="f1"):
        load_spec_text(text)


def test_a_long_id_is_quoted_short() -> None:
    long_id = "x" * 100_000
    text = BASE.replace("id: agg", f"id: {long_id}", 1).replace("to: agg", "to: agg_missing", 1)
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    assert len(str(info.value)) < 2000
    assert "100,000 characters" in str(info.value) or "agg_missing" in str(info.value)


# -- Every valid spec runs: the ends of the ranges through the sim, the oracle and the tuners. --------------

_ENDS = {
    "cost_us": [m.MIN_COST_US, m.MAX_COST_US],
    "selectivity": [0.0, 1e-9, m.MAX_SELECTIVITY],
    "record_bytes": [0, m.MAX_RECORD_BYTES],
    "rate_share": [m.MIN_RATE_SHARE, m.MAX_RATE_SHARE],
}


@st.composite
def extreme_specs(draw: st.DrawFn) -> dict:
    data = draw(job_spec_data(max_operators=6, semantics=False))
    for op in data["operators"]:
        for field, ends in _ENDS.items():
            if field in ("selectivity",) and op["kind"] in ("source", "sink"):
                continue
            if field == "rate_share" and op["kind"] != "source":
                continue
            if draw(st.booleans()):
                op[field] = draw(st.sampled_from(ends))
        if draw(st.booleans()):
            op["max_parallelism"] = m.MAX_PARALLELISM_BOUND
    data["workload"]["rate_rps"] = draw(st.sampled_from([m.MIN_RATE_RPS, 1.0, m.MAX_RATE_RPS]))
    if draw(st.booleans()):
        data["workload"]["schedule"] = {
            "kind": "step",
            "steps": [{"at_s": 0, "factor": m.MIN_RATE_FACTOR}, {"at_s": 30, "factor": m.MAX_RATE_FACTOR}],
        }
    data["restart_s"] = draw(st.sampled_from([0.0, m.MAX_RESTART_S]))
    return data


def _finite(values: object) -> bool:
    if isinstance(values, dict):
        return all(_finite(v) for v in values.values())
    if isinstance(values, (list, tuple)):
        return all(_finite(v) for v in values)
    return not isinstance(values, float) or math.isfinite(values)


@settings(max_examples=40, deadline=None)
@given(extreme_specs(), st.sampled_from(["ds2", "autoscaler"]))
def test_valid_specs_at_the_ends_of_the_ranges_run_without_overflow(data: dict, tuner: str) -> None:
    try:
        spec = load_spec_text(yaml.safe_dump(data, sort_keys=False), "extreme.yaml")
    except SpecError as error:  # the demand bound may refuse a combination: with a position
        assert all(p.location.line for p in error.problems)
        return
    state = steady_state(spec, spec.parallelism)
    assert _finite(state.capacity_rps) and _finite(state.demand_rps) and _finite(state.busy)
    oracle = oracle_parallelism(spec)
    assert all(isinstance(p, int) for p in oracle.parallelism.values())
    with SimExecutor(noise=0.0) as sim:
        try:
            trace = run_tuning(spec, sim, make_tuner(tuner), TuningConfig(max_steps=3), seed=0)
        except StreamtuneError as error:  # a clean refusal is allowed; an OverflowError is not
            pytest.fail(f"a valid spec was refused while tuning: {error}")
    for step in trace.steps:
        assert _finite(step.observation.model_dump() if hasattr(step.observation, "model_dump") else vars(step.observation))
