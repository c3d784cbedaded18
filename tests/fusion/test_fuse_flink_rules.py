"""Flink's chaining rules, one table row per rule (each row breaks exactly that rule), Flink's chain names,
and the chains Flink builds for the Nexmark configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.fusion import FLINK_RULES, FlinkOptions, chain_failures, flink_chains, plan_fusion
from streamtune_cli.fusion.flink_rules import flink_operator_name, source_chain_failures
from streamtune_cli.spec import JobGraph, JobSpec, load_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def tiny(**changes: Any) -> JobSpec:
    """src -> a -> b -> sink, all forward at p=2; the edge under test is a -> b.

    Built with pydantic only (not the loader), so a row can break one rule that the loader would also
    reject for another reason (a forward edge between unequal parallelism).
    """
    ops: dict[str, dict[str, Any]] = {
        "src": {"id": "src", "kind": "source", "parallelism": 2},
        "a": {"id": "a", "kind": "map", "parallelism": 2},
        "b": {"id": "b", "kind": "map", "parallelism": 2},
        "sink": {"id": "sink", "kind": "sink", "parallelism": 2},
    }
    edges: list[dict[str, Any]] = [
        {"from": "src", "to": "a"},
        {"from": "a", "to": "b"},
        {"from": "b", "to": "sink"},
    ]
    job: dict[str, Any] = {"name": "tiny", "workload": {"rate_rps": 1000}}
    for key, value in changes.items():
        if key == "edge":
            edges[1].update(value)
        elif key == "extra_edges":
            edges += value
        elif key == "extra_ops":
            ops.update({op["id"]: op for op in value})
        elif key in ops:
            ops[key].update(value)
        else:
            job[key] = value
    return JobSpec.model_validate({**job, "operators": list(ops.values()), "edges": edges})


def failures_of(spec: JobSpec, src: str = "a", dst: str = "b", options: FlinkOptions = FlinkOptions()) -> list:
    graph = JobGraph(spec)
    return chain_failures(graph, graph.edge(src, dst), options)


# (rule, spec, reason). Each spec breaks exactly one rule on the edge a -> b.
RULE_ROWS = [
    (
        "single_input",
        tiny(extra_ops=[{"id": "src2", "kind": "source", "parallelism": 2}], extra_edges=[{"from": "src2", "to": "b"}]),
        "`b` has 2 inputs",
    ),
    ("chaining_enabled", tiny(chaining_enabled=False), "chaining disabled for the job (chaining_enabled: false)"),
    ("slot_sharing_group", tiny(b={"slot_sharing_group": "heavy"}), "slot sharing group `default` vs `heavy`"),
    ("upstream_strategy", tiny(a={"chaining": "never"}), "`a` chaining: never"),
    ("downstream_strategy", tiny(b={"chaining": "head"}), "`b` chaining: head"),
    ("downstream_strategy", tiny(b={"chaining": "never"}), "`b` chaining: never"),
    (
        "downstream_strategy",
        tiny(b={"chaining": "head_with_sources"}),
        "`b` chaining: head_with_sources and `a` is not a source",
    ),
    ("parallelism", tiny(b={"parallelism": 4}, sink={"parallelism": 4}), "parallelism 2 vs 4"),
    ("forward", tiny(edge={"partitioning": "hash", "key": ["auction"]}), "hash edge on `auction`"),
    ("forward", tiny(edge={"partitioning": "rebalance"}), "rebalance edge"),
    ("forward", tiny(edge={"partitioning": "broadcast"}), "broadcast edge"),
    ("pipelined", tiny(edge={"exchange": "batch"}), "batch exchange"),
    (
        "yielding",
        tiny(src={"legacy_source": True}, b={"yielding": True}),
        "`b` yields (a writer or async operator) behind the legacy source `src`",
    ),
]


@pytest.mark.parametrize(("rule", "spec", "reason"), RULE_ROWS, ids=[f"{r[0]}:{r[2]}" for r in RULE_ROWS])
def test_each_rule_alone_blocks_chaining(rule: str, spec: JobSpec, reason: str) -> None:
    failures = failures_of(spec)
    assert [(f.rule, f.reason) for f in failures] == [(rule, reason)]
    chain_of = {m: c.head for c in flink_chains(JobGraph(spec)) for m in c.members}
    assert chain_of["a"] != chain_of["b"]


def test_max_parallelism_rule_applies_only_when_flink_is_told_so() -> None:
    spec = tiny(b={"max_parallelism": 64})
    assert failures_of(spec) == []  # Flink's default: chain-operators-with-different-max-parallelism = true
    strict = FlinkOptions(chain_different_max_parallelism=False)
    assert [(f.rule, f.reason) for f in failures_of(spec, options=strict)] == [
        ("max_parallelism", "max parallelism 128 vs 64")
    ]


def test_the_base_row_chains_completely() -> None:
    spec = tiny()
    assert failures_of(spec) == []
    chains = flink_chains(JobGraph(spec))
    assert [c.name for c in chains] == ["Source: src -> a -> b -> Sink: sink"]


def test_head_with_sources_chains_behind_a_source() -> None:
    spec = tiny(a={"chaining": "head_with_sources"})
    assert failures_of(spec, "src", "a") == []


def test_union_rule_blocks_chaining_a_source_into_a_union() -> None:
    # m unions src and src2; m asks for its sources (head_with_sources) but a union input never chains.
    spec = JobSpec.model_validate(
        {
            "name": "union",
            "workload": {"rate_rps": 10},
            "operators": [
                {"id": "src", "kind": "source"},
                {"id": "src2", "kind": "source"},
                {"id": "m", "kind": "map", "chaining": "head_with_sources"},
                {"id": "sink", "kind": "sink"},
            ],
            "edges": [{"from": "src", "to": "m"}, {"from": "src2", "to": "m"}, {"from": "m", "to": "sink"}],
        }
    )
    graph = JobGraph(spec)
    assert source_chain_failures(graph, "src") == ["`m` unions this input with `src2`"]
    assert {c.head for c in flink_chains(graph)} == {"src", "src2", "m"}


def test_sources_chain_into_a_two_input_operator_that_asks_for_them() -> None:
    # Source chaining (isChainableSource) skips the single-input rule: both sources run inside j's task.
    spec = JobSpec.model_validate(
        {
            "name": "multi",
            "workload": {"rate_rps": 10},
            "operators": [
                {"id": "left", "kind": "source"},
                {"id": "right", "kind": "source"},
                {"id": "j", "kind": "join", "chaining": "head_with_sources"},
                {"id": "sink", "kind": "sink"},
            ],
            "edges": [{"from": "left", "to": "j"}, {"from": "right", "to": "j"}, {"from": "j", "to": "sink"}],
        }
    )
    chains = flink_chains(JobGraph(spec))
    assert len(chains) == 1
    assert chains[0].head == "j"
    assert set(chains[0].chained_sources) == {"left", "right"}
    assert chains[0].name == "j [Source: left, Source: right] -> Sink: sink"


def test_fan_out_chain_is_named_like_flink() -> None:
    spec = JobSpec.model_validate(
        {
            "name": "fan",
            "workload": {"rate_rps": 10},
            "operators": [
                {"id": "src", "kind": "source", "name": "gen"},
                {"id": "x", "kind": "map", "name": "Calc"},
                {"id": "y", "kind": "filter"},
                {"id": "s1", "kind": "sink"},
                {"id": "s2", "kind": "sink", "name": "Sink: out"},
            ],
            "edges": [
                {"from": "src", "to": "x"},
                {"from": "x", "to": "s1"},
                {"from": "x", "to": "y"},
                {"from": "y", "to": "s2"},
            ],
        }
    )
    (chain,) = flink_chains(JobGraph(spec))
    # Flink: name -> (out1, out2) in out-edge order; sources/sinks prefixed once; display names used.
    assert chain.name == "Source: gen -> Calc -> (Sink: s1, y -> Sink: out)"


def test_flink_rules_table_covers_every_rule() -> None:
    """Dropping a rule from FLINK_RULES, or its check from the code, makes this or a row above fail."""
    expected = {
        "single_input",
        "chaining_enabled",
        "slot_sharing_group",
        "upstream_strategy",
        "downstream_strategy",
        "yielding",
        "parallelism",
        "max_parallelism",
        "forward",
        "pipelined",
        "union",
    }
    assert {rule for rule, _ in FLINK_RULES} == expected
    covered = {rule for rule, _, _ in RULE_ROWS} | {"max_parallelism", "union"}
    assert covered == expected


# The vertices Flink builds for each Nexmark DAG, derived by hand from the rules above.
NEXMARK_FLINK_CHAINS = {
    "q1": {"Source: bids -> to_euro -> Sink: sink"},
    "q2": {"Source: bids -> sampled_auctions -> auction_price", "Sink: sink"},
    "q3": {"Source: auctions -> category_10", "Source: persons -> local_sellers", "seller_join -> suggestion -> Sink: sink"},
    "q5": {"Source: bids -> auction_time", "bids_per_auction", "max_per_window -> Sink: sink"},
    "q8": {"Source: persons -> person_fields", "Source: auctions -> auction_seller", "new_users -> Sink: sink"},
    "q11": {"Source: bids -> bidder_time", "bidder_sessions -> Sink: sink"},
}


@pytest.mark.parametrize("query", sorted(NEXMARK_FLINK_CHAINS))
def test_flink_mode_gives_flinks_chains_for_nexmark(query: str) -> None:
    spec = load_spec(CONFIGS / "nexmark" / f"{query}.yaml")
    plan = plan_fusion(spec, mode="flink")
    assert {stage.name for stage in plan.stages} == NEXMARK_FLINK_CHAINS[query]
    assert {c.name for c in flink_chains(JobGraph(spec))} == NEXMARK_FLINK_CHAINS[query]


def test_q5_default_mode_gives_the_same_chains_as_flink() -> None:
    spec = load_spec(CONFIGS / "nexmark" / "q5.yaml")
    assert {s.name for s in plan_fusion(spec).stages} == NEXMARK_FLINK_CHAINS["q5"]
    boundary = {(b.src, b.dst): b for b in plan_fusion(spec, mode="flink").boundaries}
    assert "hash edge on `auction`" in boundary[("auction_time", "bids_per_auction")].reasons
    assert "parallelism 2 vs 4" in boundary[("auction_time", "bids_per_auction")].reasons


def chain_spec(n_maps: int) -> JobSpec:
    """source -> m0 -> ... -> m{n-1} -> sink, all forward at parallelism 1: one Flink chain."""
    ids = ["src", *(f"m{i}" for i in range(n_maps)), "out"]
    kinds = ["source", *(["map"] * n_maps), "sink"]
    return JobSpec.model_validate(
        {
            "name": "long",
            "workload": {"rate_rps": 1000},
            "operators": [{"id": i, "kind": k} for i, k in zip(ids, kinds)],
            "edges": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])],
        }
    )


def test_a_chain_of_2000_operators_is_named_without_recursion() -> None:
    """The chain name nests once per operator; 2000 is past Python's default recursion limit (1000)."""
    spec = chain_spec(1998)
    (chain,) = flink_chains(JobGraph(spec))
    assert len(chain.members) == 2000
    assert chain.name == " -> ".join(["Source: src", *(f"m{i}" for i in range(1998)), "Sink: out"])


def test_fuse_command_handles_a_2000_operator_chain(tmp_path: Path) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from streamtune_cli.cli.app import app
    from streamtune_cli.spec.loader import spec_to_data

    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(spec_to_data(chain_spec(1998))))
    out = tmp_path / "fuse.json"
    result = CliRunner().invoke(app, ["fuse", str(path), "--mode", "flink", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["chains"] == 1


def _reference_name(graph: JobGraph, op_id: str, internal: set[tuple[str, str]]) -> str:
    """createChainedName as Flink writes it (recursively); fine for the small trees below."""
    outs = [_reference_name(graph, c, internal) for c in graph.nx.successors(op_id) if (op_id, c) in internal]
    base = flink_operator_name(graph, op_id)
    if len(outs) > 1:
        return base + " -> (" + ", ".join(outs) + ")"
    return base + (" -> " + outs[0] if outs else "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12))
def test_iterative_chain_name_matches_the_recursive_definition(parent_picks: list[int]) -> None:
    """Random chained trees (each operator hangs under an earlier one): same name as the recursive rule."""
    ids = ["src", *(f"o{i}" for i in range(len(parent_picks)))]
    edges = [{"from": ids[pick % (i + 1)], "to": ids[i + 1]} for i, pick in enumerate(parent_picks)]
    has_out = {e["from"] for e in edges}
    operators = [{"id": "src", "kind": "source"}] + [
        {"id": i, "kind": "map" if i in has_out else "sink"} for i in ids[1:]
    ]
    spec = JobSpec.model_validate({"name": "tree", "workload": {"rate_rps": 10}, "operators": operators, "edges": edges})
    graph = JobGraph(spec)
    (chain,) = flink_chains(graph)
    assert chain.name == _reference_name(graph, "src", set(chain.internal_edges))


def test_yielding_chains_behind_a_flip27_source_and_behind_a_broken_chain() -> None:
    # The rule looks at the head of the upstream chain (getHeadOperator): a FLIP-27 source, or a chain that
    # a hash edge starts, does not block a yielding operator.
    assert failures_of(tiny(b={"yielding": True})) == []
    spec = tiny(src={"legacy_source": True}, b={"yielding": True}, extra_ops=[], a={"chaining": "head"})
    assert failures_of(spec) == []  # `a` heads its own chain: the legacy source is not its head


def test_sink_writers_as_flink_sql_builds_them() -> None:
    # Flink 2.3's SQL datagen is a legacy SourceFunction; its blackhole sink is a Sink V2 writer, named
    # `table[n]: Writer`, which yields: so the writer starts a chain of its own (seen on a real cluster).
    spec = tiny(src={"legacy_source": True, "name": "bid[1]"}, sink={"sink_writer": True, "name": "out[4]"})
    names = [c.name for c in flink_chains(JobGraph(spec))]
    assert names == ["Source: bid[1] -> a -> b", "out[4]: Writer"]
    graph = JobGraph(spec)
    assert [f.rule for f in chain_failures(graph, graph.edge("b", "sink"))] == ["yielding"]


def test_a_legacy_source_is_never_chained_into_its_consumer() -> None:
    spec = tiny(a={"chaining": "head_with_sources"}, src={"legacy_source": True})
    assert source_chain_failures(JobGraph(spec), "src") == ["`src` is a legacy SourceFunction source"]
