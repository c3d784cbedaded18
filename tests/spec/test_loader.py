"""Spec loading: shipped configs are valid; each kind of broken spec names the right file:line:col."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from streamtune_cli.errors import SpecError
from streamtune_cli.spec import JobGraph, dump_spec, load_spec, load_spec_text
from streamtune_cli.spec.models import OperatorKind

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(glob.glob(str(ROOT / "configs" / "*" / "*.yaml")))
JOB_CONFIGS = [c for c in CONFIGS if "/bench/" not in c and "/gates/" not in c]
Q2 = (ROOT / "configs" / "nexmark" / "q2.yaml").read_text()


def position_of(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based (line, column) of a needle in the text, computed independently of the loader."""
    index = -1
    for _ in range(occurrence + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def errors_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    return info.value


@pytest.mark.parametrize("path", JOB_CONFIGS, ids=lambda p: Path(p).stem)
def test_shipped_configs_are_valid(path: str) -> None:
    spec = load_spec(path)
    graph = JobGraph(spec)
    assert graph.sources and graph.sinks
    assert len(graph.topological_order) == len(spec.operators)


def test_nexmark_queries_are_all_shipped() -> None:
    names = {Path(p).stem for p in JOB_CONFIGS if "/nexmark/" in p}
    assert {"q1", "q2", "q3", "q5", "q8", "q11"} <= names


def test_nexmark_semantics_match_the_queries() -> None:
    q2 = load_spec(ROOT / "configs/nexmark/q2.yaml")
    assert "MOD(auction, 123) = 0" in q2.operator("sampled_auctions").predicate
    q5 = load_spec(ROOT / "configs/nexmark/q5.yaml")
    window = q5.operator("bids_per_auction").window
    assert (window.type, window.size_s, window.slide_s) == ("hop", 10, 2)
    q11 = load_spec(ROOT / "configs/nexmark/q11.yaml")
    assert q11.operator("bidder_sessions").window.gap_s == 10
    q8 = load_spec(ROOT / "configs/nexmark/q8.yaml")
    assert q8.operator("new_users").join.window.size_s == 10
    # Event sizes follow the Nexmark generator: bids 100 B, auctions 500 B, persons 200 B.
    assert q2.operator("bids").output_record_bytes == 100
    q3 = load_spec(ROOT / "configs/nexmark/q3.yaml")
    assert q3.operator("auctions").output_record_bytes == 500
    assert q3.operator("persons").output_record_bytes == 200


BROKEN = {
    # name: (replace old -> new in q2, the text whose position the error must name, occurrence)
    "yaml syntax": ("parallelism: 2\n    cost_us: 0.6", "parallelism: [2\n    cost_us: 0.6", None),
    "duplicate id": ("id: auction_price", "id: sampled_auctions", ("id: sampled_auctions", 1)),
    "negative rate": ("rate_rps: 1000000", "rate_rps: -5", ("rate_rps", 0)),
    "unknown edge target": ("to: sink, partitioning: rebalance", "to: sinkk, partitioning: rebalance", ("to: sinkk", 0)),
    "bad sql": ("MOD(auction, 123) = 0", "MOD(auction,, 123) = = 0", ("predicate", 0)),
    "forward unequal": (
        "parallelism: 2\n    cost_us: 0.8",
        "parallelism: 3\n    cost_us: 0.8",
        ("partitioning: forward}", 1),
    ),
    "unknown field": ("cost_us: 0.6", "cost_uss: 0.6", ("cost_uss", 0)),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_spec_names_position(case: str) -> None:
    old, new, where = BROKEN[case]
    assert old in Q2
    text = Q2.replace(old, new, 1)
    error = errors_of(text)
    locations = [(p.location.file, p.location.line, p.location.column) for p in error.problems]
    assert all(f == "job.yaml" and line and col for f, line, col in locations)
    if where is None:  # syntax errors: the line of the unclosed bracket's continuation
        assert "syntax" in str(error)
        assert error.problems[0].location.line == position_of(text, "cost_us: 0.6")[0]
        return
    needle, occurrence = where
    line, col = position_of(text, needle, occurrence)
    assert ("job.yaml", line, col) in locations, (case, locations, str(error))


def test_cycle_is_reported_on_an_edge_of_the_cycle() -> None:
    text = Q2 + "  - {from: auction_price, to: sampled_auctions, partitioning: forward}\n"
    error = errors_of(text)
    assert "cycle" in str(error)
    assert error.problems[0].location.line == position_of(text, "{from: auction_price, to: sampled_auctions")[0]


def test_all_problems_of_a_file_are_listed() -> None:
    text = Q2.replace("cost_us: 0.6", "cost_us: -1").replace("cost_us: 0.8", "cost_uss: 0.8")
    error = errors_of(text)
    assert len(error.problems) == 2
    assert str(error).count("job.yaml:") == 3  # header + two problems


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("kind: sink", "kind: map", "no sink"),
        ("kind: source\n    generator: nexmark\n    events: [bid]", "kind: map", "no source"),
        ("partitioning: rebalance}", "partitioning: hash}", "needs a key"),
        ("{kind: constant}", "{kind: step, steps: []}", "steps"),
        ("parallelism: 1\n", "parallelism: 1\n    max_parallelism: 0\n", "max_parallelism"),
    ],
)
def test_rule_violations(old: str, new: str, message: str) -> None:
    assert old in Q2
    assert message in str(errors_of(Q2.replace(old, new, 1)))


def test_empty_and_non_mapping_documents() -> None:
    assert "empty" in str(errors_of(""))
    assert "mapping" in str(errors_of("- 1\n- 2\n"))


def test_duplicate_yaml_key_is_an_error() -> None:
    text = Q2.replace("cost_us: 0.6", "cost_us: 0.6\n    cost_us: 0.7", 1)
    assert "duplicate key" in str(errors_of(text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_dump_is_loadable_and_minimal() -> None:
    spec = load_spec(ROOT / "configs/nexmark/q5.yaml")
    text = dump_spec(spec)
    assert load_spec_text(text) == spec
    assert "chaining: always" not in text  # defaults stay out of dumped specs


def test_with_parallelism_raises_max_parallelism() -> None:
    spec = load_spec(ROOT / "configs/nexmark/q1.yaml")
    changed = spec.with_parallelism({"to_euro": 300})
    assert changed.operator("to_euro").parallelism == 300
    assert changed.operator("to_euro").max_parallelism == 300
    assert changed.operator("bids").parallelism == spec.operator("bids").parallelism


def test_join_sides_must_be_inputs() -> None:
    q3 = (ROOT / "configs/nexmark/q3.yaml").read_text()
    error = errors_of(q3.replace("right: local_sellers", "right: suggestion"))
    assert "join.right 'suggestion' is not an input" in str(error)
    assert error.problems[0].location.line == position_of(q3.replace("right: local_sellers", "right: suggestion"), "right: suggestion")[0]


def test_source_rates_split_by_share() -> None:
    graph = JobGraph(load_spec(ROOT / "configs/nexmark/q3.yaml"))
    rates = graph.source_rates(1000.0)
    assert rates == {"auctions": 750.0, "persons": 250.0}
    assert all(graph.operator(s).kind == OperatorKind.source for s in rates)


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("cost_us: 0.6", "cost_us: .inf", "finite"),
        ("rate_rps: 1000000", "rate_rps: .nan", "finite"),
        ("selectivity: 0.0081", "selectivity: .inf", "finite"),
        ("parallelism: 1\n", "parallelism: 40000\n", "less than or equal to 32768"),
    ],
)
def test_non_finite_and_out_of_bound_numbers(old: str, new: str, message: str) -> None:
    assert old in Q2
    error = errors_of(Q2.replace(old, new, 1))
    assert message in str(error)
    assert error.problems[0].location.line == position_of(Q2.replace(old, new, 1), new.strip())[0]


def test_recursive_alias_is_rejected_with_position() -> None:
    error = errors_of("name: x\nloop: &a [1, *a]\n")
    assert "refers to itself" in str(error) and error.problems[0].location.line == 2


def test_alias_bomb_is_rejected_before_expanding() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    error = errors_of("\n".join(lines) + "\n")
    assert "expands to more than" in str(error)


def test_plain_aliases_still_work() -> None:
    text = Q2.replace("cost_us: 0.6", "cost_us: &cheap 0.6", 1).replace("cost_us: 0.8", "cost_us: *cheap", 1)
    spec = load_spec_text(text)
    assert spec.operator("auction_price").cost_us == spec.operator("sampled_auctions").cost_us == 0.6


def test_tags_on_collections_are_rejected() -> None:
    assert "unsupported YAML tag" in str(errors_of("name: !!set {a: null}\n"))
    assert "python" in str(errors_of("name: !!python/object/apply:os.system [echo]\n"))
