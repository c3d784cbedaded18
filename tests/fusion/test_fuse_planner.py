"""Our mode's decisions: stateless operators moved before an exchange (only when safe and smaller), filter
pushdown inside a stage, the spec split of source..sink stages, alignment proposals, and fixpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamtune_cli.capacity import demand_rps
from streamtune_cli.errors import UsageError
from streamtune_cli.fusion import plan_fusion
from streamtune_cli.spec import JobGraph, dump_spec, load_spec, load_spec_text, spec_to_data

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL_CONFIGS = sorted((CONFIGS / "nexmark").glob("*.yaml")) + sorted((CONFIGS / "synthetic").glob("*.yaml"))

PULL = """
name: pull
workload: {{rate_rps: 100000}}
operators:
  - {{id: src, kind: source, parallelism: 2, cost_us: 1.0, record_bytes: 100}}
  - id: keep
    kind: {kind}
    parallelism: 4
    cost_us: 0.5
    selectivity: 0.1
    {semantics}
  - {{id: agg, kind: aggregate, parallelism: 4, cost_us: 2.0, selectivity: 0.5, key: [auction], aggregates: {{n: "COUNT(*)"}}}}
  - {{id: out, kind: sink, parallelism: 4, cost_us: 0.5}}
edges:
  - {{from: src, to: keep, partitioning: {partitioning}}}
  - {{from: keep, to: agg}}
  - {{from: agg, to: out}}
"""


def pull_spec(kind: str = "filter", semantics: str = "predicate: price > 10", partitioning: str = "hash, key: [auction]"):  # noqa: ANN201
    return load_spec_text(PULL.format(kind=kind, semantics=semantics, partitioning=partitioning), "pull.yaml")


def edge(plan, src: str, dst: str):  # noqa: ANN001, ANN201
    return next(b for b in plan.boundaries if (b.src, b.dst) == (src, dst))


def test_a_selective_filter_moves_before_the_hash_exchange() -> None:
    spec = pull_spec()
    plan = plan_fusion(spec)
    moved = edge(plan, "src", "keep")
    assert moved.fused and moved.how == "moved"
    after = edge(plan, "keep", "agg")
    assert not after.fused
    assert (after.effective_partitioning, after.effective_key) == ("hash", ("auction",))
    assert any("moved here from `src` -> `keep`" in r for r in after.reasons)
    fused = plan.fused_spec
    fused_edge = next(e for e in fused.edges if e.dst == "agg__out")
    assert fused_edge.src == "src__keep" and fused_edge.partitioning.value == "hash" and fused_edge.key == ["auction"]
    # The exchange now carries the 10% the filter keeps: 1e5 * 0.1 * 100 B instead of 1e5 * 100 B.
    assert plan.after.serialized_bytes_per_s == pytest.approx(1e5 * 0.1 * 100)
    assert plan.before.serialized_bytes_per_s > plan.after.serialized_bytes_per_s
    # Flink would keep the filter behind the exchange and chain it with the aggregate.
    flink = plan_fusion(spec, mode="flink")
    assert not edge(flink, "src", "keep").fused and edge(flink, "keep", "agg").fused


@pytest.mark.parametrize(
    ("kind", "semantics", "partitioning", "reason"),
    [
        ("project", "columns: {price: price}", "hash, key: [auction]", "`keep` does not keep the key `auction`"),
        ("map", "columns: {auction: auction + 1}", "hash, key: [auction]", "`keep` does not keep the key `auction`"),
        ("map", "record_bytes: 100", "hash, key: [auction]", "`keep` declares no columns, so it may change the key `auction`"),
        ("filter", "predicate: price > 10", "broadcast", "broadcast edge"),
    ],
)
def test_moves_that_would_change_meaning_are_refused(kind: str, semantics: str, partitioning: str, reason: str) -> None:
    plan = plan_fusion(pull_spec(kind, semantics, partitioning))
    blocked = edge(plan, "src", "keep")
    assert not blocked.fused
    assert any(reason in r for r in blocked.reasons), blocked.reasons


def test_a_rebalance_needs_no_key_to_move_a_stateless_operator() -> None:
    plan = plan_fusion(pull_spec("map", "record_bytes: 10", "rebalance"))
    assert edge(plan, "src", "keep").how == "moved"


def test_stateful_operators_never_move() -> None:
    spec = load_spec_text(
        """
name: stateful
workload: {rate_rps: 1000}
operators:
  - {id: src, kind: source, parallelism: 2}
  - {id: agg, kind: aggregate, parallelism: 4, selectivity: 0.01, key: [k], aggregates: {n: "COUNT(*)"}}
  - {id: out, kind: sink, parallelism: 4}
edges:
  - {from: src, to: agg, partitioning: hash, key: [k]}
  - {from: agg, to: out}
"""
    )
    blocked = edge(plan_fusion(spec), "src", "agg")
    assert not blocked.fused
    assert "not moved before the exchange: `agg` is not stateless (aggregate)" in blocked.reasons


PUSHDOWN = """
name: pushdown
workload: {rate_rps: 1000}
operators:
  - {id: src, kind: source, parallelism: 1, record_bytes: 50}
  - {id: price_eur, kind: map, parallelism: 1, cost_us: 3.0, columns: {auction: auction, eur: price * 0.9}, record_bytes: 60}
  - {id: expensive, kind: filter, parallelism: 1, selectivity: 0.1, predicate: eur > 100}
  - {id: out, kind: sink, parallelism: 2}
edges:
  - {from: src, to: price_eur, partitioning: hash, key: [price]}
  - {from: price_eur, to: expensive}
  - {from: expensive, to: out, partitioning: rebalance}
"""


def test_filter_pushdown_inside_a_stage_and_its_composed_semantics() -> None:
    plan = plan_fusion(load_spec_text(PUSHDOWN))
    stage = plan.stage_of("expensive")
    assert stage.members == ("price_eur", "expensive")
    assert stage.pushdowns == ("filter `expensive` runs before `price_eur`",)
    (fused,) = [o for o in plan.fused_spec.operators if o.id == "price_eur__expensive"]
    assert fused.kind.value == "filter"
    assert fused.predicate == "(price * 0.9) > 100"  # rewritten onto the stage's input
    assert fused.columns == {"auction": "auction", "eur": "price * 0.9"}
    assert fused.selectivity == pytest.approx(0.1)
    # The map now runs on 10% of the records: cost per record 1.0 (filter) + 0.1 * 3.0, minus the saving.
    assert fused.cost_us < 1.0 + 0.1 * 3.0
    assert stage.exact_semantics


def test_a_source_to_sink_stage_is_written_as_two_operators() -> None:
    spec = load_spec(CONFIGS / "nexmark" / "q1.yaml")
    plan = plan_fusion(spec, rate_rps=100_000)
    assert [s.name for s in plan.stages] == ["Source: bids -> to_euro -> Sink: sink"]
    (stage,) = plan.stages
    assert stage.spec_operators == ("bids__to_euro", "sink")
    split = edge(plan, "to_euro", "sink")
    assert split.fused and split.spec_split


def test_alignment_is_proposed_where_it_makes_a_fusion_legal() -> None:
    plan = plan_fusion(load_spec(CONFIGS / "nexmark" / "q2.yaml"))
    (proposal,) = plan.proposals
    assert (proposal.src, proposal.dst, proposal.parallelism) == ("auction_price", "sink", 2)
    assert proposal.changes == (("Sink: sink", 1, 2),)
    assert proposal.instance_delta == 1
    assert proposal.message.startswith("align to p=2: +1 instance of `Sink: sink` (p 1 -> 2)")
    # What it would save is that one edge's traffic: 8,100 rec/s of 16 B records.
    assert proposal.savings.serialized_bytes_per_s == pytest.approx(1e6 * 0.0081 * 16)


@pytest.mark.parametrize("mode", ["ours", "flink"])
@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.stem)
def test_configs_fuse_to_a_valid_fixpoint(path: Path, mode: str) -> None:
    spec = load_spec(path)
    plan = plan_fusion(spec, mode=mode)
    fused = load_spec_text(dump_spec(plan.fused_spec), "fused.yaml")  # validates, SQL included
    again = plan_fusion(fused, mode=mode, rate_rps=plan.rate_rps)
    assert spec_to_data(again.fused_spec) == spec_to_data(fused)
    # Every fused operator receives what its first member received.
    before = demand_rps(JobGraph(spec), JobGraph(spec).source_rates(plan.rate_rps))
    graph = JobGraph(fused)
    after = demand_rps(graph, graph.source_rates(plan.rate_rps))
    for op_id, members in plan.spec_members.items():
        assert after[op_id] == pytest.approx(before[members[0]])


def test_summary_is_what_the_json_report_puts_at_the_top() -> None:
    plan = plan_fusion(load_spec(CONFIGS / "nexmark" / "q5.yaml"))
    summary, report = plan.summary(), plan.to_dict()
    for key in ("chains", "fused_edges", "boundaries", "serialized_bytes_per_s", "cpu_us_per_s", "hops_per_s", "latency_ms"):
        assert report[key] == summary[key]
    assert summary["cpu_us_per_s"] == pytest.approx(plan.before.cpu_us_per_s - plan.after.cpu_us_per_s)
    assert summary["fused_edges"] + summary["boundaries"] == len(plan.spec.edges)
    assert report["schema"] == "streamtune.fusion/2"


def test_peak_of_the_schedule_is_the_default_rate() -> None:
    spec = load_spec(CONFIGS / "synthetic" / "two_source_join.yaml")  # steps to 1.5x at 900 s
    assert plan_fusion(spec).rate_rps == pytest.approx(600_000 * 1.5)


def test_bad_mode_and_rate_are_usage_errors() -> None:
    spec = load_spec(CONFIGS / "nexmark" / "q5.yaml")
    with pytest.raises(UsageError):
        plan_fusion(spec, mode="beam")
    with pytest.raises(UsageError):
        plan_fusion(spec, rate_rps=-1)


def test_a_moved_exchange_keeps_the_downstream_edges_exchange_mode() -> None:
    spec = load_spec_text(PULL.format(kind="filter", semantics="predicate: price > 10", partitioning="hash, key: [auction]")
                          .replace("- {from: keep, to: agg}", "- {from: keep, to: agg, exchange: batch}"), "pull.yaml")
    plan = plan_fusion(spec)
    assert edge(plan, "src", "keep").how == "moved"
    (moved,) = [e for e in plan.fused_spec.edges if e.src == "src__keep"]
    assert (moved.partitioning.value, moved.key, moved.exchange.value) == ("hash", ["auction"], "batch")


def test_flink_source_chaining_runs_both_sources_in_the_join_task() -> None:
    spec = load_spec_text(
        """
name: multi
workload: {rate_rps: 1000}
operators:
  - {id: left, kind: source}
  - {id: right, kind: source}
  - {id: j, kind: join, chaining: head_with_sources, join: {left: left, right: right, left_key: [id], right_key: [id]}}
  - {id: out, kind: sink}
edges:
  - {from: left, to: j}
  - {from: right, to: j}
  - {from: j, to: out}
"""
    )
    plan = plan_fusion(spec, mode="flink")
    assert [s.name for s in plan.stages] == ["j [Source: left, Source: right] -> Sink: out"]
    assert {b.how for b in plan.boundaries if b.dst == "j"} == {"source input"}
    # A spec operator cannot be a source with inputs, nor a join without outputs: the spec keeps all four.
    fused = load_spec_text(dump_spec(plan.fused_spec))
    assert sorted(op.id for op in fused.operators) == ["j", "left", "out", "right"]
    assert plan.stages[0].spec_operators == ("left", "right", "j", "out")


def test_semantics_are_exact_only_where_the_fields_can_say_it() -> None:
    plan = plan_fusion(load_spec(CONFIGS / "nexmark" / "q5.yaml"), mode="flink")
    exact = {stage.name: stage.exact_semantics for stage in plan.stages}
    # bids -> auction_time: a source with the projection's columns; max_per_window -> sink: a sink cannot
    # carry the aggregate, so the member list (JSON report) is the description.
    assert exact == {
        "Source: bids -> auction_time": True,
        "bids_per_auction": True,
        "max_per_window -> Sink: sink": False,
    }
    source = next(op for op in plan.fused_spec.operators if op.id == "bids__auction_time")
    assert source.kind.value == "source" and source.columns == {"auction": "auction", "date_time": "date_time"}
    assert plan.to_dict()["fused_spec_operators"]["max_per_window__sink"] == ["max_per_window", "sink"]


def test_head_with_sources_looks_at_the_operator_directly_upstream_in_every_round() -> None:
    # src -> m is chained; x asks for sources but its upstream is m, so x stays a vertex of its own, also
    # when the fused spec (where `src__m` is a source-kind operator) is planned again.
    spec = load_spec_text(
        """
name: hws
workload: {rate_rps: 1000}
operators:
  - {id: src, kind: source}
  - {id: m, kind: map}
  - {id: x, kind: map, chaining: head_with_sources}
  - {id: y, kind: filter}
  - {id: out, kind: sink}
edges:
  - {from: src, to: m}
  - {from: m, to: x}
  - {from: m, to: y}
  - {from: x, to: out, partitioning: rebalance}
  - {from: y, to: out, partitioning: rebalance}
"""
    )
    plan = plan_fusion(spec, mode="flink")
    assert sorted(s.name for s in plan.stages) == ["Sink: out", "Source: src -> m -> y", "x"]
    blocked = edge(plan, "m", "x")
    assert blocked.reasons == ("`x` chaining: head_with_sources and `m` is not a source",)


def test_public_api_is_exactly_what_the_package_exports() -> None:
    import streamtune_cli.fusion as fusion

    public = {name for name in dir(fusion) if not name.startswith("_")}
    modules = {"cost_model", "emit", "flink_rules", "plan", "planner", "sql_rewrite", "measure"}
    assert public - modules == set(fusion.__all__)
