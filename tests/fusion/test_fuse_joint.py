"""The joint plan (chains and parallelism decided together at the peak rate), checked on random specs against
a brute force written independently of the planner's search: it keeps up whenever any cut and parallelism
does, it is as small as the best such plan, its chains are legal Flink chains at its parallelism, and Flink
builds exactly those chains from the spec it writes out."""

from __future__ import annotations

import os
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings

from fuse_specgen import fusion_spec_data, spec_of
from streamtune_cli.capacity import demand_rps
from streamtune_cli.fusion import CostModel, plan_fusion
from streamtune_cli.fusion.cost_model import estimate_stage
from streamtune_cli.fusion.emit import joint_spec
from streamtune_cli.fusion.flink_rules import chain_failures, source_chain_failures
from streamtune_cli.spec import JobGraph, JobSpec, load_spec, load_spec_text
from streamtune_cli.spec.models import OperatorKind, Partitioning
from streamtune_cli.spec.parallelism import retarget_parallelism

from test_fuse_planner import ALL_CONFIGS, CONFIGS

SETTINGS = settings(
    max_examples=int(os.environ.get("STREAMTUNE_FUSE_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
STATELESS = {"map", "filter", "project", "flat_map"}


class _Stage:
    """A chain in the shape estimate_stage reads (no pushdown, composed hand-over behind stateless ops)."""

    def __init__(self, graph: JobGraph, members: list[str], internal: list[tuple[str, str]], p: int):
        self.name = self.head = _head(graph, members, internal)
        self.members = members
        self.internal_edges = internal
        self.composed_edges = [e for e in internal if graph.operator(e[0]).kind.value in STATELESS]
        self.parallelism = p
        self.seen_rps = None


def _head(graph: JobGraph, members: list[str], internal: list[tuple[str, str]]) -> str:
    """Flink's head: the member whose fused inputs (if any) are all sources chained into it."""
    chained_sources = {
        s for s, d in internal
        if graph.operator(s).kind == OperatorKind.source and graph.operator(d).chaining.value == "head_with_sources"
    }
    return next(
        m for m in members
        if m not in chained_sources and all(s in chained_sources for s, d in internal if d == m)
    )


def chainable(graph: JobGraph) -> list[tuple[str, str]]:
    """Edges Flink chains when both ends have one parallelism, from the rules module directly."""
    found = []
    for edge in graph.spec.edges:
        src_op = graph.operator(edge.src)
        as_source = src_op.kind == OperatorKind.source and not source_chain_failures(graph, edge.src)
        if as_source or not [f for f in chain_failures(graph, edge) if f.rule != "parallelism"]:
            found.append((edge.src, edge.dst))
    return found


def components(nodes: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    parent = {n: n for n in nodes}

    def root(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def brute_force(spec: JobSpec, rate: float, fused: tuple[tuple[str, str], ...]) -> tuple[bool, int, float]:
    """(keeps up, tasks, CPU) of one cut, every chain at the smallest parallelism that keeps up, found by
    scanning p = 1..cap (or the one of highest capacity): upstream chains first (broadcast inputs)."""
    graph = JobGraph(spec)
    order = {op: i for i, op in enumerate(graph.topological_order)}
    chains = [sorted(c, key=order.__getitem__) for c in components(graph.topological_order, list(fused))]
    chains.sort(key=lambda c: order[_head(graph, c, [e for e in fused if e[0] in c])])
    parallelism = {op.id: 1 for op in spec.operators}
    keeps_up, tasks, cpu = True, 0, 0.0
    model = CostModel()
    for chain in chains:
        internal = [e for e in fused if e[0] in chain]
        cap = min(graph.operator(m).max_parallelism for m in chain)
        best = None
        for p in range(1, cap + 1):
            for m in chain:
                parallelism[m] = p
            demand = demand_rps(graph, graph.source_rates(rate), parallelism)
            estimate = estimate_stage(graph, demand, _Stage(graph, chain, internal, p), model)
            if estimate.utilization <= 1 + 1e-9:
                best = (p, estimate)
                break
            if best is None or estimate.utilization < best[1].utilization:
                best = (p, estimate)
        assert best is not None
        p, estimate = best
        for m in chain:
            parallelism[m] = p
        keeps_up &= estimate.utilization <= 1 + 1e-9
        tasks += p
        cpu += estimate.cpu_us_per_s
    return keeps_up, tasks, cpu


def small(data: dict) -> bool:
    spec = spec_of(data)
    return len(chainable(JobGraph(spec))) <= 5


@SETTINGS
@given(fusion_spec_data(max_middle=6))
def test_the_joint_plan_keeps_up_whenever_any_plan_can_and_is_the_smallest(data: dict) -> None:
    spec = spec_of(data)
    graph = JobGraph(spec)
    edges = chainable(graph)
    if len(edges) > 5:
        return
    plan = plan_fusion(spec)
    joint = plan.joint
    assert joint is not None
    # Candidates are exactly the chainable edges.
    assert {(e.src, e.dst) for e in joint.edges} == set(edges)
    results = [brute_force(spec, plan.rate_rps, cut) for k in range(len(edges) + 1) for cut in combinations(edges, k)]
    feasible = [(tasks, cpu) for ok, tasks, cpu in results if ok]
    if feasible:
        assert joint.keeps_up, plan.notes
        best_tasks = min(t for t, _ in feasible)
        broadcast = any(e.partitioning == Partitioning.broadcast for e in spec.edges)
        if not broadcast:
            assert joint.estimate.tasks == best_tasks
            best_cpu = min(c for t, c in feasible if t == best_tasks)
            assert joint.estimate.cpu_us_per_s <= best_cpu * (1 + 1e-9) + 1e-6
    else:
        assert not joint.keeps_up
        assert any("not keep up" in note for note in plan.notes)


@SETTINGS
@given(fusion_spec_data())
def test_the_joint_plan_is_never_bigger_than_flink_at_the_oracle_parallelism_unless_it_says_why(data: dict) -> None:
    plan = plan_fusion(spec_of(data))
    joint, flink = plan.compared["joint"], plan.compared["flink_oracle"]
    assert plan.joint is not None
    if plan.joint.oracle_feasible:  # the unfused job at the oracle's parallelism keeps up: so must the joint plan
        assert plan.joint.keeps_up
    assert joint.tasks <= plan.compared["oracle"].tasks or not plan.joint.oracle_feasible
    if joint.tasks > flink.tasks:
        assert flink.max_utilization > 1 + 1e-9  # Flink's chains there do not keep up ...
        assert any("more task" in note and "do not keep up" in note for note in plan.notes)  # ... and it says so
    if joint.cpu_us_per_s > flink.cpu_us_per_s * (1 + 1e-9) + 1e-6:
        assert any("more CPU than Flink's chaining" in note for note in plan.notes)
    # At the spec's parallelism too: less than --mode flink is explained.
    given_, flink_given = plan.compared["given"], plan.compared["flink_given"]
    if flink_given.tasks < given_.tasks or flink_given.cpu_us_per_s < given_.cpu_us_per_s * (1 - 1e-9) - 1e-6:
        assert any("fuses less than Flink's chaining" in note for note in plan.notes)


@SETTINGS
@given(fusion_spec_data())
def test_joint_chains_fuse_only_what_the_rules_allow_and_flink_builds_them(data: dict) -> None:
    spec = spec_of(data)
    plan = plan_fusion(spec)
    joint = plan.joint
    assert joint is not None
    deployed = retarget_parallelism(spec, joint.parallelism)
    graph = JobGraph(deployed)
    for edge in joint.edges:
        if not edge.fused:
            continue
        assert joint.parallelism[edge.src] == joint.parallelism[edge.dst]
        if edge.how == "source input":
            assert source_chain_failures(graph, edge.src) == []
        else:
            assert chain_failures(graph, graph.edge(edge.src, edge.dst)) == []
    for op in spec.operators:
        assert joint.parallelism[op.id] <= op.max_parallelism
    # The spec the joint plan writes out validates, and Flink chains it exactly as the joint plan says.
    written = joint_spec(spec, joint)
    from streamtune_cli.spec import dump_spec

    reloaded = load_spec_text(dump_spec(written), "joint.yaml")
    flink = plan_fusion(reloaded, mode="flink", rate_rps=plan.rate_rps, joint=False)
    assert {frozenset(s.members) for s in flink.stages} == {frozenset(s.members) for s in joint.stages}
    assert flink.after.tasks == joint.estimate.tasks


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_joint_plan(path) -> None:  # noqa: ANN001
    plan = plan_fusion(load_spec(path))
    joint, flink = plan.compared["joint"], plan.compared["flink_oracle"]
    assert plan.joint is not None
    assert plan.joint.keeps_up or not plan.joint.oracle_feasible
    assert joint.tasks <= flink.tasks or flink.max_utilization > 1
    assert joint.tasks <= plan.compared["oracle"].tasks


def test_q1_fuses_the_forward_chain_at_the_parallelism_it_needs() -> None:
    plan = plan_fusion(load_spec(CONFIGS / "nexmark" / "q1.yaml"))
    assert plan.joint is not None
    (stage,) = plan.joint.stages
    assert stage.members == ("bids", "to_euro", "sink")
    # 1e6 rec/s at 4 + 1.5 + 1 µs less the two fused edges' savings: 5.8 cores, 7 instances at USL sigma 0.02.
    assert plan.joint.estimate.cpu_us_per_s == pytest.approx(5.8e6)
    assert stage.parallelism == 7 and plan.joint.keeps_up
    assert plan.compared["oracle"].tasks == 8
    assert plan.notes[0].startswith("The spec as written cannot keep up at its peak rate (1,000,000 rec/s)")


def test_a_chain_that_would_need_more_tasks_than_its_parts_is_cut() -> None:
    # At 300,000 rec/s a and b each need 0.9 cores: p=1. Fused they need 1.8 cores, and with the USL
    # contention of sigma 0.2 that takes p=3: cutting runs 2 tasks instead of 3.
    spec = load_spec_text(
        """
name: cut
workload: {rate_rps: 300000}
operators:
  - {id: src, kind: source, cost_us: 0.5, chaining: head}
  - {id: a, kind: map, cost_us: 3.0, scaling: {sigma: 0.2}}
  - {id: b, kind: map, cost_us: 3.0, scaling: {sigma: 0.2}}
  - {id: out, kind: sink, cost_us: 0.1, chaining: head}
edges:
  - {from: src, to: a, partitioning: rebalance}
  - {from: a, to: b}
  - {from: b, to: out, partitioning: rebalance}
"""
    )
    plan = plan_fusion(spec)
    joint = plan.joint
    assert joint is not None and joint.keeps_up
    assert (joint.parallelism["a"], joint.parallelism["b"]) == (1, 1)
    (edge,) = [e for e in joint.edges if (e.src, e.dst) == ("a", "b")]
    assert not edge.fused
    assert edge.reason.startswith("fused, the chain would need p=3; cut, 1 + 1 tasks")
    # Both ends at p=1: Flink would chain them unless `b` starts a new chain, which the written spec says.
    assert "startNewChain" in edge.reason
    assert joint_spec(spec, joint).operator("b").chaining.value == "head"
    # Whatever it chose is what a brute force over both cuts finds smallest.
    fused = brute_force(spec, plan.rate_rps, (("a", "b"),))
    cut = brute_force(spec, plan.rate_rps, ())
    assert joint.estimate.tasks == min(fused[1], cut[1])


def test_a_long_path_is_split_exactly() -> None:
    # 10 operators, 9 chainable edges: above the exhaustive limit, so the path search decides; a brute force
    # over all 512 cuts must not find a smaller plan.
    costs = [3.0, 1.5, 6.0, 2.5, 0.5, 4.0, 2.0, 5.0, 1.0, 1.0]
    kinds = ["source"] + ["map"] * 8 + ["sink"]
    ops = "\n".join(
        f"  - {{id: o{i}, kind: {kind}, cost_us: {cost}, scaling: {{sigma: 0.1}}}}"
        for i, (kind, cost) in enumerate(zip(kinds, costs))
    )
    edges = "\n".join(f"  - {{from: o{i}, to: o{i + 1}}}" for i in range(9))
    spec = load_spec_text(f"name: path\nworkload: {{rate_rps: 400000}}\noperators:\n{ops}\nedges:\n{edges}\n")
    plan = plan_fusion(spec)
    assert plan.joint is not None and plan.joint.searched == "exact (path)"
    pairs = [(f"o{i}", f"o{i + 1}") for i in range(9)]
    results = [brute_force(spec, plan.rate_rps, cut) for k in range(10) for cut in combinations(pairs, k)]
    best = min((tasks, cpu) for ok, tasks, cpu in results if ok)
    assert plan.joint.keeps_up
    assert plan.joint.estimate.tasks == best[0]
    assert plan.joint.estimate.cpu_us_per_s == pytest.approx(min(c for ok, t, c in results if ok and t == best[0]))
    assert plan.joint.estimate.tasks < plan.compared["oracle"].tasks  # fusing pays here
