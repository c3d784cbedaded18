"""The fusion planner. `flink` mode reproduces Flink's chains; `ours` adds semantic fusion (one pass over
filters/projections/maps, filter pushdown, stateless operators moved before an exchange) and fuses only
what the cost model says keeps up. Both run in rounds on their own output until the fused spec no longer
changes, so fusing a fused spec changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Iterable

from streamtune_cli.capacity import demand_rps
from streamtune_cli.errors import UsageError
from streamtune_cli.spec.graph import JobGraph, lexicographic_topological_order
from streamtune_cli.spec.models import ChainingStrategy, Edge, ExchangeMode, JobSpec, Operator, OperatorKind, Partitioning
from streamtune_cli.spec.parallelism import retarget_parallelism
from streamtune_cli.tuning.oracle import OracleResult, oracle_parallelism
from streamtune_cli.tuning.oracle import minimal_parallelism  # the oracle's own search, per chain

from streamtune_cli.fusion.cost_model import (
    CAPACITY_TOLERANCE,
    _StageView,
    CostModel,
    PlanEstimate,
    StageCost,
    StageEstimate,
    estimate_plan,
    estimate_stage,
    stage_stand_in,
    exchange_records_per_s,
    stage_capacity_rps,
)
from streamtune_cli.fusion.emit import FUSED_ID_SEPARATOR, combined_operator, edge_data, linear_segments
from streamtune_cli.fusion.flink_rules import (
    FlinkOptions,
    chain_failures,
    edge_label,
    flink_chain_name,
    flink_chains,
    internal_edges,
    source_chain_failures,
)
from streamtune_cli.fusion.plan import Boundary, FusionPlan, JointEdge, JointPlan, JointStage, Proposal, Savings, Stage
from streamtune_cli.fusion.sql_rewrite import STATELESS_KINDS, keeps_columns

__all__ = ["MODES", "plan_fusion", "plan_joint", "peak_rate_factor", "fmt_bytes_per_s", "fmt_cpu", "fmt_ratio"]

MODES = ("ours", "flink")
EdgeKey = tuple[str, str]


def peak_rate_factor(spec: JobSpec) -> float:
    """The highest factor the workload's schedule reaches; a trace file counts as 1 here (the planner
    reads no files; `streamtune fuse` passes the trace's peak rate explicitly)."""
    schedule = spec.workload.schedule
    return 1.0 if schedule.kind == "trace" else schedule.peak_factor()


def fmt_bytes_per_s(value: float) -> str:
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} B/s"


def fmt_cpu(cpu_us_per_s: float) -> str:
    """CPU per second as cores (1 core = 1e6 µs of CPU per second)."""
    cores = cpu_us_per_s / 1e6
    if abs(cores) >= 0.01:
        return f"{cores:.3g} cores"
    return f"{cpu_us_per_s / 1e3:.3g} ms/s"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass
class _Names:
    """Original operators behind the (possibly fused) operators of a round, for messages."""

    origin: dict[str, tuple[str, ...]]
    original: JobGraph

    def head(self, op_id: str) -> str:
        return self.origin[op_id][0]

    def exit(self, op_id: str) -> str:
        return self.origin[op_id][-1]

    def head_kind(self, op_id: str) -> str:
        return self.original.operator(self.head(op_id)).kind.value

    def exit_is_source(self, op_id: str) -> bool:
        return self.original.operator(self.exit(op_id)).kind == OperatorKind.source

    def first_operator(self, op_id: str) -> Operator:
        return self.original.operator(self.head(op_id))

    def hands_over_freely(self, op_id: str) -> bool:
        """Whether records leave this operator without a copy: its last member is stateless, so nothing
        holds on to a record it emits (a fused operator's kind may say `source` while its tail is a map)."""
        return self.original.operator(self.exit(op_id)).kind in STATELESS_KINDS


@dataclass
class _Build:
    head: str
    members: list[str]
    parallelism: int
    cost: StageCost | None  # linear stages (ours); Flink's trees are costed per segment
    chained_sources: list[str] = field(default_factory=list)


@dataclass
class _Decision:
    fused: bool
    how: str
    reasons: list[str]


@dataclass
class _Round:
    graph: JobGraph
    demand: dict[str, float]
    builds: list[_Build]
    decisions: dict[EdgeKey, _Decision]
    relabels: dict[EdgeKey, Edge]
    composed: bool  # whether stateless producers hand records over without a copy (ours)
    moved_notes: dict[EdgeKey, str] = field(default_factory=dict)  # relabelled edge -> where its exchange came from


def _capacity_problem(
    graph: JobGraph,
    demand: dict[str, float],
    build: _Build,
    candidate: StageCost,
    relabels: dict[EdgeKey, Edge],
    joining: str,
    names: _Names,
    limit: float,
) -> str | None:
    """Why the stage with `joining` added would slow the job down at its parallelism (None: it would not).

    `limit` is the job's worst utilization before fusion, at least 1: a job already held back by an
    overloaded task runs at 1/limit of the target, and a fused stage below that load does not slow it more.
    """
    need = demand[build.head]
    capacity = stage_capacity_rps(graph, build.head, candidate.as_operator(), build.parallelism, relabels)
    if capacity * limit >= need * (1 - CAPACITY_TOLERANCE):
        return None
    message = f"would exceed capacity: {fmt_ratio(need / capacity)}x"
    if limit > 1:
        message += f", the job's bottleneck is at {fmt_ratio(limit)}x"
    assert build.cost is not None
    current = stage_capacity_rps(graph, build.head, build.cost.as_operator(), build.parallelism, relabels)
    op = graph.operator(joining)
    alone = stage_capacity_rps(graph, joining, op, op.parallelism, relabels)
    if need > current * limit * (1 + CAPACITY_TOLERANCE):
        message += f" (already {fmt_ratio(need / current)}x without `{names.head(joining)}`)"
    elif demand[joining] > alone * limit * (1 + CAPACITY_TOLERANCE):
        message += f" (`{names.head(joining)}` alone is at {fmt_ratio(demand[joining] / alone)}x)"
    return message


def _pull_blockers(
    graph: JobGraph, edge: Edge, build: _Build, names: _Names, fan_out: int
) -> list[str]:
    """Why the downstream operator of a hash/rebalance edge cannot run before the exchange, in the
    upstream's task. Safe moves only: a stateless per-record operator gives the same output on whichever
    instance runs it, and it must keep the partitioning key so the exchange can move behind it."""
    up, op = graph.operator(edge.src), graph.operator(edge.dst)
    up_name, name = names.exit(edge.src), names.head(edge.dst)
    if op.kind not in STATELESS_KINDS:
        return [f"`{name}` is not stateless ({names.head_kind(edge.dst)})"]
    blockers = []
    if not graph.spec.chaining_enabled:
        blockers.append("chaining disabled for the job (chaining_enabled: false)")
    if edge.exchange == ExchangeMode.batch:
        blockers.append("batch exchange")
    if op.chaining != ChainingStrategy.always:
        blockers.append(f"`{name}` chaining: {op.chaining.value}")
    if up.chaining == ChainingStrategy.never:
        blockers.append(f"`{up_name}` chaining: never")
    if up.slot_sharing_group != op.slot_sharing_group:
        blockers.append(f"slot sharing group `{up.slot_sharing_group}` vs `{op.slot_sharing_group}`")
    if fan_out > 1:
        blockers.append(f"fan-out: `{up_name}` feeds {fan_out} operators (a fused stage has one output)")
    if edge.partitioning == Partitioning.hash:
        keys = ", ".join(f"`{k}`" for k in edge.key or [])
        kept = keeps_columns(op, edge.key or [])
        if kept is False:
            blockers.append(f"`{name}` does not keep the key {keys}")
        elif kept is None:
            blockers.append(f"`{name}` declares no columns, so it may change the key {keys}")
    if op.max_parallelism < build.parallelism:
        blockers.append(f"`{name}` max parallelism {op.max_parallelism} < {build.parallelism}")
    sel, out_bytes, in_bytes = op.selectivity, op.output_record_bytes, up.output_record_bytes
    if not (sel <= 1 and sel * out_bytes <= in_bytes and (sel < 1 or sel * out_bytes < in_bytes)):
        blockers.append(f"moving `{name}` before the exchange would not shrink it")
    return blockers


def _skew_problem(
    graph: JobGraph,
    demand: dict[str, float],
    relabels: dict[EdgeKey, Edge],
    new_relabels: dict[EdgeKey, Edge],
    names: _Names,
    limit: float,
) -> str | None:
    """A moved hash exchange makes its new receivers subject to their key skew: they must still keep up."""
    merged = {**relabels, **new_relabels}
    for (_, dst), edge in new_relabels.items():
        op = graph.operator(dst)
        if edge.partitioning != Partitioning.hash or op.key_skew is None:
            continue
        capacity = stage_capacity_rps(graph, dst, op, op.parallelism, merged)
        if demand[dst] > capacity * limit * (1 + CAPACITY_TOLERANCE):
            return (
                f"`{names.head(dst)}` would receive the skewed hash input: "
                f"would exceed capacity: {fmt_ratio(demand[dst] / capacity)}x"
            )
    return None


def _round_ours(
    graph: JobGraph, demand: dict[str, float], model: CostModel, options: FlinkOptions, names: _Names, limit: float
) -> _Round:
    builds: list[_Build] = []
    stage_of: dict[str, _Build] = {}
    relabels: dict[EdgeKey, Edge] = {}
    decisions: dict[EdgeKey, _Decision] = {}
    moved_note: dict[EdgeKey, str] = {}

    def exchange(edge: Edge, reasons: list[str]) -> None:
        key = (edge.src, edge.dst)
        if key in moved_note:  # the note already names the edge type
            reasons = [moved_note[key]] + [r for r in reasons if r != edge_label(edge)]
        decisions[key] = _Decision(False, "exchange", reasons)

    for op_id in graph.topological_order:
        op = graph.operator(op_id)
        in_edges = [relabels.get((e.src, e.dst), e) for e in graph.in_edges(op_id)]
        joined: _Build | None = None
        if len(in_edges) > 1:
            for edge in in_edges:
                failures = chain_failures(graph, edge, options, roles=names)
                exchange(edge, [f.reason for f in failures])
        elif len(in_edges) == 1:
            edge = in_edges[0]
            up = edge.src
            build = stage_of[up]
            fan_out = len(graph.downstream(up))
            reasons = [f.reason for f in chain_failures(graph, edge, options, roles=names)]
            composed = names.hands_over_freely(up)
            if edge.partitioning == Partitioning.forward:
                if fan_out > 1:
                    reasons.append(f"fan-out: `{names.exit(up)}` feeds {fan_out} operators (a fused stage has one output)")
                if not reasons:
                    candidate = build.cost.extended(op, model, composed=composed, pushdown=True)  # type: ignore[union-attr]
                    problem = _capacity_problem(graph, demand, build, candidate, relabels, op_id, names, limit)
                    if problem is None:
                        build.members.append(op_id)
                        build.cost = candidate
                        why = "Flink can chain it" + ("; one pass, no record copy" if composed else "")
                        decisions[(up, op_id)] = _Decision(True, "composed" if composed else "chained", [why])
                        joined = build
                    else:
                        reasons.append(problem)
            elif edge.partitioning in (Partitioning.hash, Partitioning.rebalance):
                blockers = _pull_blockers(graph, edge, build, names, fan_out)
                if not blockers:
                    candidate = build.cost.extended(op, model, composed=composed, pushdown=True)  # type: ignore[union-attr]
                    # The exchange moves onto the forward outputs (they keep their own exchange mode).
                    moved = {
                        (op_id, out.dst): Edge.model_validate(
                            {**edge_data(edge, op_id, out.dst), "exchange": out.exchange.value}
                        )
                        for out in graph.out_edges(op_id)
                        if out.partitioning == Partitioning.forward
                    }
                    problem = _capacity_problem(graph, demand, build, candidate, relabels, op_id, names, limit)
                    problem = problem or _skew_problem(graph, demand, relabels, moved, names, limit)
                    if problem is None:
                        relabels.update(moved)
                        for key in moved:
                            moved_note[key] = (
                                f"the {edge_label(edge)} moved here from `{names.exit(up)}` -> `{names.head(op_id)}`"
                            )
                        build.members.append(op_id)
                        build.cost = candidate
                        why = f"`{names.head(op_id)}` is stateless and runs before the {edge_label(edge)}"
                        decisions[(up, op_id)] = _Decision(True, "moved", [why])
                        joined = build
                    else:
                        blockers = [problem]
                reasons += [f"not moved before the exchange: {b}" for b in blockers if b not in reasons]
            if joined is None:
                exchange(edge, reasons or ["not fused"])
        if joined is None:
            joined = _Build(head=op_id, members=[op_id], parallelism=op.parallelism, cost=StageCost.single(op))
            builds.append(joined)
        stage_of[op_id] = joined
    return _Round(graph, demand, builds, decisions, relabels, composed=True, moved_notes=moved_note)


def _round_flink(
    graph: JobGraph, demand: dict[str, float], model: CostModel, options: FlinkOptions, names: _Names, limit: float
) -> _Round:
    builds = []
    stage_of: dict[str, int] = {}
    chains = flink_chains(graph, options, names)
    for index, found in enumerate(chains):
        builds.append(
            _Build(
                head=found.head,
                members=list(found.members),
                parallelism=graph.operator(found.head).parallelism,
                cost=None,
                chained_sources=list(found.chained_sources),
            )
        )
        for member in found.members:
            stage_of[member] = index
    decisions = {}
    for edge in graph.spec.edges:
        key = (edge.src, edge.dst)
        if stage_of[edge.src] == stage_of[edge.dst]:
            how = "source input" if edge.src in builds[stage_of[edge.src]].chained_sources else "chained"
            decisions[key] = _Decision(True, how, ["all Flink chaining rules hold"])
        else:
            failures = chain_failures(graph, edge, options, roles=names)
            decisions[key] = _Decision(False, "exchange", [f.reason for f in failures] or ["not chained"])
    return _Round(graph, demand, builds, decisions, {}, composed=False)


def _segment_cost(graph: JobGraph, segment: list[str], model: CostModel, composed: bool, names: _Names) -> StageCost:
    cost = StageCost.single(graph.operator(segment[0]))
    for prev, op_id in zip(segment, segment[1:]):
        cost = cost.extended(
            graph.operator(op_id), model, composed=composed and names.hands_over_freely(prev), pushdown=composed
        )
    return cost


@dataclass
class _Emitted:
    spec: JobSpec
    members_of: dict[str, list[str]]  # new id -> ids of the round's input operators
    edge_of: dict[EdgeKey, EdgeKey]  # new edge -> input edge
    exact_of: dict[str, bool]
    changed: bool


def _segment_name(names: _Names, segment: list[str]) -> str:
    """Flink's name for the original operators behind a segment of (possibly already fused) operators."""
    members = [m for op_id in segment for m in names.origin[op_id]]
    return flink_chain_name(names.original, members[0], internal_edges(names.original, members))


def _emit(r: _Round, model: CostModel, names: _Names, exact_before: dict[str, bool]) -> _Emitted:
    graph = r.graph
    segments: list[tuple[list[str], _Build]] = []
    for build in r.builds:
        internal = set(internal_edges(graph, build.members))
        segments += [(segment, build) for segment in linear_segments(graph, build.members, internal)]
    changed = any(len(segment) > 1 for segment, _ in segments)
    if not changed:
        members = {op.id: [op.id] for op in graph.spec.operators}
        edges = {(e.src, e.dst): (e.src, e.dst) for e in graph.spec.edges}
        return _Emitted(graph.spec, members, edges, dict(exact_before), False)
    taken = {op.id for op in graph.spec.operators}
    new_id_of: dict[str, str] = {}
    ids: list[str] = []
    for segment, _ in segments:
        if len(segment) == 1:
            new_id = segment[0]
        else:
            new_id = base = FUSED_ID_SEPARATOR.join(segment)
            suffix = 2
            while new_id in taken:
                new_id = f"{base}{FUSED_ID_SEPARATOR}{suffix}"
                suffix += 1
            taken.add(new_id)
        ids.append(new_id)
        for member in segment:
            new_id_of[member] = new_id
    operators = {}
    exact_of: dict[str, bool] = {}
    for (segment, build), new_id in zip(segments, ids):
        cost = _segment_cost(graph, segment, model, r.composed, names)
        combined = combined_operator(
            graph,
            segment,
            cost,
            new_id=new_id,
            name=_segment_name(names, segment) if len(segment) > 1 else "",
            parallelism=build.parallelism,
            id_of_input=new_id_of,
        )
        operators[new_id] = combined.operator
        exact_of[new_id] = combined.exact_semantics and all(exact_before.get(m, True) for m in segment)
    edges: dict[EdgeKey, tuple[EdgeKey, dict]] = {}
    for edge in graph.spec.edges:
        src, dst = new_id_of[edge.src], new_id_of[edge.dst]
        if src != dst:
            effective = r.relabels.get((edge.src, edge.dst), edge)
            edges[(src, dst)] = ((edge.src, edge.dst), edge_data(effective, src, dst))
    # Order operators and edges as a lexicographic topological sort, so emitting an unchanged plan again
    # reproduces the same file.
    up: dict[str, list[str]] = {op_id: [] for op_id in operators}
    down: dict[str, list[str]] = {op_id: [] for op_id in operators}
    for src, dst in edges:
        up[dst].append(src)
        down[src].append(dst)
    order = lexicographic_topological_order(up, down)
    rank = {op_id: i for i, op_id in enumerate(order)}
    edge_keys = sorted(edges, key=lambda k: (rank[k[0]], rank[k[1]]))
    spec = graph.spec.model_copy(
        update={
            "operators": [operators[op_id] for op_id in order],
            "edges": [Edge.model_validate(edges[k][1]) for k in edge_keys],
        }
    )
    members_of = {new_id: segment for (segment, _), new_id in zip(segments, ids)}
    return _Emitted(spec, members_of, {k: edges[k][0] for k in edge_keys}, exact_of, True)


def _edge_savings(
    graph: JobGraph, demand: dict[str, float], edge: Edge, model: CostModel, composed: bool
) -> Savings:
    """What fusing this one edge saves per second (an exchange's records, bytes, hop and serialization)."""
    serialized, delivered = exchange_records_per_s(graph, demand, edge)
    up, down = graph.operator(edge.src), graph.operator(edge.dst)
    record_bytes = up.output_record_bytes
    return Savings(
        cpu_us_per_s=serialized * model.fused_saving_us(record_bytes, down.cost_us, composed),
        serialized_bytes_per_s=serialized * record_bytes,
        network_bytes_per_s=delivered * record_bytes,
        hops_per_s=delivered,
        latency_ms=model.hop_latency_ms,
    )


@dataclass(frozen=True)
class _StageInput:
    """A round's stage in the shape estimate_plan reads."""

    name: str
    head: str
    members: tuple[str, ...]
    internal_edges: tuple[EdgeKey, ...]
    composed_edges: tuple[EdgeKey, ...]
    parallelism: int
    seen_rps: dict[str, float] | None


def _stage_inputs(r: _Round, stage_names: Iterable[str], names: _Names) -> list[_StageInput]:
    graph = r.graph
    inputs = []
    for build, name in zip(r.builds, stage_names):
        internal = tuple(internal_edges(graph, build.members))
        composed = tuple(k for k in internal if r.composed and names.hands_over_freely(k[0]))
        seen = None
        if build.cost is not None:
            head_rate = r.demand[build.head]
            seen = {
                build.cost.members[index].id: head_rate * weight
                for index, weight in zip(build.cost.eval_order, build.cost.seen)
            }
        inputs.append(
            _StageInput(name, build.head, tuple(build.members), internal, composed, build.parallelism, seen)
        )
    return inputs


def _proposals(
    r: _Round, model: CostModel, options: FlinkOptions, stage_names: list[str], names: _Names
) -> list[Proposal]:
    """Where a rebalance edge only blocks fusion through unequal parallelism (or the edge type), propose the
    alignment with the fewest added instances whose fused stage still keeps up."""
    graph, demand = r.graph, r.demand
    build_of = {m: i for i, b in enumerate(r.builds) for m in b.members}
    found = []
    for edge in graph.spec.edges:
        src, dst = edge.src, edge.dst
        if r.decisions[(src, dst)].fused or edge.partitioning != Partitioning.rebalance:
            continue
        if edge.exchange == ExchangeMode.batch or len(graph.upstream(dst)) != 1 or len(graph.downstream(src)) != 1:
            continue
        other = [f for f in chain_failures(graph, edge, options, roles=names) if f.rule not in ("parallelism", "forward")]
        if other:
            continue
        up_build, down_build = r.builds[build_of[src]], r.builds[build_of[dst]]
        choice = None
        for p in sorted({up_build.parallelism, down_build.parallelism}):
            if not all(
                b.parallelism == p or _has_no_outside_forward(graph, b, (src, dst))
                for b in (up_build, down_build)
            ):
                continue
            if any(graph.operator(m).max_parallelism < p for m in up_build.members + down_build.members):
                continue
            candidate = up_build.cost
            assert candidate is not None
            for prev, member in zip([src] + down_build.members, down_build.members):
                candidate = candidate.extended(
                    graph.operator(member), model, composed=names.hands_over_freely(prev), pushdown=True
                )
            capacity = stage_capacity_rps(graph, up_build.head, candidate.as_operator(), p)
            if capacity >= demand[up_build.head] * (1 - CAPACITY_TOLERANCE):
                choice = p
                break
        if choice is None:
            continue
        changes = tuple(
            (stage_names[build_of[b.members[0]]], b.parallelism, choice)
            for b in (up_build, down_build)
            if b.parallelism != choice
        )
        savings = _edge_savings(graph, demand, edge, model, composed=names.hands_over_freely(src))
        edge_text = f"`{names.exit(src)}` -> `{names.head(dst)}`"
        if changes:
            what = ", ".join(
                f"{new - old:+d} instance{'s' if abs(new - old) != 1 else ''} of `{name}` (p {old} -> {new})"
                for name, old, new in changes
            )
            head = f"align to p={choice}: {what}, make {edge_text} forward"
        else:
            head = f"make {edge_text} forward (parallelism is already {choice})"
        message = (
            f"{head}; saves {fmt_bytes_per_s(savings.serialized_bytes_per_s)} serialized, "
            f"{fmt_cpu(savings.cpu_us_per_s)} CPU, {savings.hops_per_s:,.0f} hops/s"
        )
        found.append(
            Proposal(names.exit(src), names.head(dst), choice, changes, True, savings, message)
        )
    return found


def _has_no_outside_forward(graph: JobGraph, build: _Build, allowed: EdgeKey) -> bool:
    """A stage can change parallelism alone only if no forward edge ties it to another stage."""
    members = set(build.members)
    for member in build.members:
        for edge in graph.in_edges(member) + graph.out_edges(member):
            crosses = (edge.src in members) != (edge.dst in members)
            if crosses and (edge.src, edge.dst) != allowed and edge.partitioning == Partitioning.forward:
                return False
    return True


@dataclass
class _History:
    """What the rounds learnt, keyed by the original operators and edges."""

    origin: dict[str, tuple[str, ...]]  # operator of the current round -> original operators, in order
    edge_origin: dict[EdgeKey, EdgeKey]  # edge of the current round -> original edge
    fused_how: dict[EdgeKey, tuple[str, list[str]]] = field(default_factory=dict)  # from the round fusing it
    # Why an edge is an exchange, from the first round that decided it: later rounds see fused operators
    # and explain less precisely ("`a__b` is not stateless" where `a` alone did not keep the key).
    first_reasons: dict[EdgeKey, list[str]] = field(default_factory=dict)
    effective: dict[EdgeKey, Edge] = field(default_factory=dict)  # edges whose exchange moved
    moved_notes: dict[EdgeKey, str] = field(default_factory=dict)
    pushdowns: dict[str, list[str]] = field(default_factory=dict)  # original filter id -> notes
    exact_of: dict[str, bool] = field(default_factory=dict)  # operator of the current round -> exact semantics

    def record(self, r: _Round, names: _Names) -> None:
        for key, decision in r.decisions.items():
            original = self.edge_origin[key]
            if decision.fused:
                self.fused_how.setdefault(original, (decision.how, decision.reasons))
            elif original not in self.first_reasons or key in r.relabels:
                self.first_reasons[original] = decision.reasons
        for key, edge in r.relabels.items():
            self.effective[self.edge_origin[key]] = edge
            self.moved_notes[self.edge_origin[key]] = r.moved_notes[key]
        for build in r.builds:
            for filter_id, before in build.cost.moved if build.cost is not None else []:
                note = f"filter `{names.head(filter_id)}` runs before " + ", ".join(f"`{names.head(b)}`" for b in before)
                self.pushdowns.setdefault(names.head(filter_id), []).append(note)

    def advance(self, emitted: _Emitted) -> None:
        self.origin = {
            new: tuple(chain.from_iterable(self.origin[m] for m in members))
            for new, members in emitted.members_of.items()
        }
        self.edge_origin = {new: self.edge_origin[old] for new, old in emitted.edge_of.items()}
        self.exact_of = emitted.exact_of


def plan_fusion(
    spec: JobSpec,
    *,
    mode: str = "ours",
    rate_rps: float | None = None,
    cost_model: CostModel | None = None,
    flink: FlinkOptions | None = None,
    max_rounds: int = 100,
    joint: bool = True,
) -> FusionPlan:
    """Plan which operators run fused. `rate_rps` defaults to the workload's rate at its schedule's peak.

    With `joint` (the default), the plan also carries the joint plan (chains and parallelism decided together
    at the parallelism the job needs), the comparisons with Flink's chaining and the notes that explain them.
    """
    if mode not in MODES:
        raise UsageError(f"unknown fusion mode {mode!r} (use one of: {', '.join(MODES)})")
    model = cost_model or CostModel()
    options = flink or FlinkOptions()
    if rate_rps is None:
        rate_rps = spec.workload.rate_rps * peak_rate_factor(spec)
    if not rate_rps > 0:
        raise UsageError(f"the rate must be positive, got {rate_rps}")
    round_fn = _round_ours if mode == "ours" else _round_flink
    graph0 = JobGraph(spec)
    demand0 = demand_rps(graph0, graph0.source_rates(rate_rps))
    before = estimate_plan(
        graph0,
        demand0,
        [
            _StageInput(op_id, op_id, (op_id,), (), (), graph0.operator(op_id).parallelism, None)
            for op_id in graph0.topological_order
        ],
        model,
    )
    limit = max(1.0, before.max_utilization)
    history = _History(
        origin={op.id: (op.id,) for op in spec.operators},
        edge_origin={(e.src, e.dst): (e.src, e.dst) for e in spec.edges},
    )
    graph, demand = graph0, demand0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - the count is reported
        names = _Names(history.origin, graph0)
        r = round_fn(graph, demand, model, options, names, limit)
        history.record(r, names)
        emitted = _emit(r, model, names, history.exact_of)
        if not emitted.changed:
            break
        history.advance(emitted)
        graph = JobGraph(emitted.spec)
        demand = demand_rps(graph, graph.source_rates(rate_rps))
    else:  # pragma: no cover - every changing round removes an operator
        raise RuntimeError("fusion did not converge")
    plan = _assemble(spec, graph0, demand0, before, mode, rate_rps, model, options, r, names, history, rounds)
    if not joint:
        return plan
    return _with_joint_plan(plan, model, options)


def _assemble(
    spec: JobSpec,
    graph0: JobGraph,
    demand0: dict[str, float],
    before: PlanEstimate,
    mode: str,
    rate_rps: float,
    model: CostModel,
    options: FlinkOptions,
    r: _Round,
    names: _Names,
    history: _History,
    rounds: int,
) -> FusionPlan:
    """Express the last round (on the final spec) in terms of the original operators."""
    order0 = {op_id: i for i, op_id in enumerate(graph0.topological_order)}
    stage_names, stage_members, stage_heads = [], [], []
    for build in r.builds:
        members = sorted(chain.from_iterable(history.origin[m] for m in build.members), key=order0.__getitem__)
        sources = [history.origin[s][0] for s in build.chained_sources]
        internal = [e for e in internal_edges(graph0, members) if e[0] not in sources]
        head = history.origin[build.head][0]
        stage_names.append(flink_chain_name(graph0, head, internal, sources))
        stage_members.append(tuple(members))
        stage_heads.append(head)
    after = estimate_plan(r.graph, r.demand, _stage_inputs(r, stage_names, names), model, r.relabels)
    stages = []
    for build, name, members, head, estimate in zip(r.builds, stage_names, stage_members, stage_heads, after.stages):
        notes = tuple(note for m in members for note in history.pushdowns.get(m, []))
        stages.append(
            Stage(
                name=name,
                head=head,
                members=members,
                parallelism=build.parallelism,
                spec_operators=tuple(build.members),
                estimate=estimate,
                pushdowns=notes,
                exact_semantics=all(history.exact_of.get(m, True) for m in build.members),
            )
        )
    final_decision = {history.edge_origin[key]: decision for key, decision in r.decisions.items()}
    boundaries = []
    for edge in spec.edges:
        key = (edge.src, edge.dst)
        moved = history.effective.get(key, edge)
        composed = mode == "ours" and graph0.operator(edge.src).kind in STATELESS_KINDS
        savings = _edge_savings(graph0, demand0, edge, model, composed)
        # A fused edge is explained by the round that fused it; an edge of the final spec is fused there only
        # where the spec had to split a stage (source..sink).
        decision = final_decision.get(key)
        fused = decision is None or decision.fused
        if fused:
            how, why = history.fused_how[key]
            reasons = tuple(why)
        else:
            how, reasons = "exchange", tuple(history.first_reasons.get(key, decision.reasons))
            note = history.moved_notes.get(key)
            if note is not None and note not in reasons:
                reasons = (note,) + reasons
        boundaries.append(
            Boundary(
                src=edge.src,
                dst=edge.dst,
                partitioning=edge.partitioning.value,
                key=tuple(edge.key or ()),
                fused=fused,
                how=how,
                reasons=reasons,
                savings=savings,
                effective_partitioning=moved.partitioning.value,
                effective_key=tuple(moved.key or ()),
                spec_split=fused and decision is not None,
            )
        )
    proposals = _proposals(r, model, options, stage_names, names) if mode == "ours" else []
    return FusionPlan(
        spec=spec,
        mode=mode,
        rate_rps=rate_rps,
        cost_model=model,
        stages=tuple(stages),
        boundaries=tuple(boundaries),
        proposals=tuple(proposals),
        before=before,
        after=after,
        fused_spec=r.graph.spec,
        spec_members={op_id: history.origin[op_id] for op_id in r.graph.topological_order},
        rounds=rounds,
    )


# The joint plan ---------------------------------------------------------------------------------------------
# Fusion decided at the parallelism the job needs: every edge Flink would chain at equal parallelism is a
# candidate, a set of fused candidates cuts the job into chains, and each chain gets the smallest parallelism
# that keeps up (the oracle's search applied to the chain as one operator). Chains interact only through the
# records they pass on, which do not depend on how other chains are cut (a broadcast input aside: it
# delivers to every instance), so each connected group of candidates is searched on its own.

# A group with at most this many candidate edges is searched exhaustively (2^n cuts).
JOINT_EXHAUSTIVE_EDGES = 6
# Greedy polishing (toggling one edge at a time) is skipped above this many candidate edges in a group.
JOINT_POLISH_EDGES = 40

_Score = tuple[float, int, float]  # (overload beyond capacity, tasks, CPU µs/s): lower is better


def _joint_candidates(graph: JobGraph, options: FlinkOptions) -> dict[EdgeKey, str]:
    """Edges Flink chains whenever both ends run at the same parallelism, with how they would fuse.

    A forward edge passing every other rule qualifies (the parallelism rule is the joint plan's to meet),
    and so does a source Flink would chain as an input of its consumer (`head_with_sources`).
    """
    found: dict[EdgeKey, str] = {}
    for source in graph.sources:
        if not source_chain_failures(graph, source, options):
            found[(source, graph.out_edges(source)[0].dst)] = "source input"
    for edge in graph.spec.edges:
        key = (edge.src, edge.dst)
        if key in found:
            continue
        if not [f for f in chain_failures(graph, edge, options) if f.rule != "parallelism"]:
            stateless = graph.operator(edge.src).kind in STATELESS_KINDS
            found[key] = "composed" if stateless else "chained"
    return found


@dataclass(frozen=True)
class _JointShape:
    """One chain of a candidate cut: members in topological order, its head, and its fused edges."""

    head: str
    members: tuple[str, ...]
    internal: tuple[EdgeKey, ...]
    sources: tuple[str, ...]  # sources chained as inputs of the head


@dataclass(frozen=True)
class _Sized:
    shape: _JointShape
    parallelism: int
    estimate: StageEstimate
    demand: dict[str, float]  # the members' input rates at that parallelism

    @property
    def score(self) -> _Score:
        over = max(0.0, self.estimate.utilization - 1.0 - 1e-9)
        return (over, self.parallelism, self.estimate.cpu_us_per_s)


class _JointSearch:
    """Sizes chains and searches the cuts of each group of candidate edges (see the section comment)."""

    def __init__(self, graph: JobGraph, rate_rps: float, model: CostModel, candidates: dict[EdgeKey, str]):
        self.graph, self.model, self.candidates = graph, model, candidates
        self.order = {op_id: i for i, op_id in enumerate(graph.topological_order)}
        self.rates = graph.source_rates(rate_rps)
        self.demand: dict[str, float] = {}  # decided operators
        self.parallelism: dict[str, int] = {}
        self._cache: dict[tuple, _Sized] = {}
        self.searched: set[str] = set()

    def fork(self, demand: dict[str, float]) -> "_JointSearch":
        """A search of the same job whose decided operators receive `demand` (for what-if sizing)."""
        other = _JointSearch.__new__(_JointSearch)
        other.__dict__.update(self.__dict__)
        other.demand, other._cache, other.searched = dict(demand), {}, set()
        return other

    # -- one chain --------------------------------------------------------------------------------------
    def shapes(self, members: Iterable[str], fused: Iterable[EdgeKey]) -> list[_JointShape]:
        """The chains `fused` cuts `members` into, in the order they must be sized (upstream first)."""
        fused = list(fused)
        shapes = []
        for inside in _components(members, fused):
            group = sorted(inside, key=self.order.__getitem__)
            internal = tuple(e for e in fused if e[0] in inside)
            sources = tuple(s for s, _ in internal if self.candidates[(s, _)] == "source input")
            tree_targets = {d for s, d in internal if s not in sources}
            head = next(m for m in group if m not in sources and m not in tree_targets)
            shapes.append(_JointShape(head, tuple(group), internal, sources))
        return sorted(shapes, key=lambda shape: self.order[shape.head])

    def _demand_at(self, shape: _JointShape, p: int) -> dict[str, float]:
        graph, local = self.graph, {}
        for m in shape.members:
            op = graph.operator(m)
            if op.kind == OperatorKind.source:
                local[m] = self.rates[m]
                continue
            total = 0.0
            for u in graph.upstream(m):
                rate = local[u] if u in local else self.demand[u]
                fan = p if graph.edge(u, m).partitioning == Partitioning.broadcast else 1
                total += rate * graph.operator(u).selectivity * fan
            local[m] = total
        return local

    def stage_input(self, shape: _JointShape, p: int) -> _StageInput:
        graph = self.graph
        composed = tuple(e for e in shape.internal if graph.operator(e[0]).kind in STATELESS_KINDS)
        return _StageInput(shape.head, shape.head, shape.members, shape.internal, composed, p, None)

    def _estimate(self, shape: _JointShape, p: int) -> tuple[StageEstimate, dict[str, float]]:
        local = self._demand_at(shape, p)
        return estimate_stage(self.graph, local, self.stage_input(shape, p), self.model), local

    def size(self, shape: _JointShape) -> _Sized:
        """The chain at the smallest parallelism that keeps up (or, where none does within the members'
        max parallelism, at the parallelism of its highest capacity)."""
        graph = self.graph
        members = set(shape.members)
        feeding = tuple(
            (u, round(self.demand[u], 6)) for m in shape.members for u in graph.upstream(m) if u not in members
        )
        key = (shape.members, shape.internal, feeding)
        if key in self._cache:
            return self._cache[key]
        cap = min(graph.operator(m).max_parallelism for m in shape.members)
        first, _ = self._estimate(shape, 1)
        broadcast_in = any(
            graph.edge(u, m).partitioning == Partitioning.broadcast
            for m in shape.members
            for u in graph.upstream(m)
            if u not in members
        )
        fixed, per_instance = first.input_rps, 0.0
        if broadcast_in:
            second, _ = self._estimate(shape, 2)
            per_instance = second.input_rps - first.input_rps
            fixed = first.input_rps - per_instance
        stand_in = stage_stand_in(graph, self.stage_input(shape, 1), first.cpu_us_per_s, first.input_rps)
        view = _StageView(graph, {shape.head: stand_in}, {})
        found, peak = minimal_parallelism(view, shape.head, cap, fixed, per_instance)
        p = found if found is not None else peak
        estimate, local = self._estimate(shape, p)
        # A broadcast input changes the cost per entering record with p (the stand-in above used p=1).
        while found is not None and estimate.utilization > 1 + CAPACITY_TOLERANCE and p < cap:
            p += 1
            estimate, local = self._estimate(shape, p)
        sized = _Sized(shape, p, estimate, local)
        self._cache[key] = sized
        return sized

    # -- a group of candidate edges ---------------------------------------------------------------------
    def evaluate(self, members: list[str], fused: Iterable[EdgeKey]) -> tuple[_Score, list[_Sized]]:
        """Size every chain of one cut of a group (upstream decisions fixed), without committing them."""
        saved = dict(self.demand)
        sized, over, tasks, cpu = [], 0.0, 0, 0.0
        try:
            for shape in self.shapes(members, fused):
                chain = self.size(shape)
                self.demand.update(chain.demand)
                sized.append(chain)
                over += chain.score[0]
                tasks += chain.parallelism
                cpu += chain.estimate.cpu_us_per_s
        finally:
            self.demand = saved
        return (round(over, 9), tasks, cpu), sized

    def commit(self, sized: list[_Sized]) -> None:
        for chain in sized:
            self.demand.update(chain.demand)
            for m in chain.shape.members:
                self.parallelism[m] = chain.parallelism

    def best_cut(self, members: list[str], edges: list[EdgeKey], seeds: list[frozenset[EdgeKey]]) -> frozenset[EdgeKey]:
        """The cut of one group with the lowest score the search finds: exhaustive for few edges, exact on a
        path without broadcast input, otherwise the best seed polished by toggling one edge at a time."""
        if not edges:
            return frozenset()
        cache: dict[frozenset[EdgeKey], _Score] = {}

        def score(cut: frozenset[EdgeKey]) -> _Score:
            if cut not in cache:
                cache[cut] = self.evaluate(members, cut)[0]
            return cache[cut]

        if len(edges) <= JOINT_EXHAUSTIVE_EDGES:
            self.searched.add("exhaustive")
            cuts = (
                frozenset(e for i, e in enumerate(edges) if mask >> i & 1) for mask in range(1 << len(edges))
            )
            return min(cuts, key=lambda cut: (score(cut), -len(cut)))
        path = self._path(members, edges)
        if path is not None:
            self.searched.add("exact (path)")
            return self._best_path_cut(path)
        self.searched.add("greedy")
        best = min(seeds, key=score)
        improved = len(edges) <= JOINT_POLISH_EDGES
        while improved:
            improved = False
            for edge in edges:
                other = best - {edge} if edge in best else best | {edge}
                if score(other) < score(best):
                    best, improved = other, True
        return best

    def _path(self, members: list[str], edges: list[EdgeKey]) -> list[str] | None:
        """The group as a path from its head, when it is one and no input of it is a broadcast."""
        graph = self.graph
        nxt = {src: dst for src, dst in edges}
        if len(nxt) != len(edges) or any(self.candidates[e] == "source input" for e in edges):
            return None
        targets = {dst for _, dst in edges}
        heads = [m for m in members if m not in targets]
        if len(heads) != 1:
            return None
        if any(e.partitioning == Partitioning.broadcast for e in graph.in_edges(heads[0])):
            return None
        path = [heads[0]]
        while path[-1] in nxt:
            path.append(nxt[path[-1]])
        return path if len(path) == len(members) else None

    def _best_path_cut(self, path: list[str]) -> frozenset[EdgeKey]:
        """Exact: the best split of a path into consecutive chains (each chain's input does not depend on
        where the path is cut, so the best split of every prefix extends to the best split of the path)."""
        n = len(path)
        best: list[tuple[_Score, int]] = [((0.0, 0, 0.0), -1)]  # best[j]: prefix of j members, last cut
        saved = dict(self.demand)
        try:
            # Every member's input rate, as single chains: any cut gives the same rates along a path.
            for m in path:
                self.demand.update(self.size(_JointShape(m, (m,), (), ())).demand)
            for j in range(1, n + 1):
                options = []
                for i in range(j):
                    segment = path[i:j]
                    shape = _JointShape(segment[0], tuple(segment), tuple(zip(segment, segment[1:])), ())
                    score, prev = self.size(shape).score, best[i][0]
                    options.append(((round(prev[0] + score[0], 9), prev[1] + score[1], prev[2] + score[2]), i))
                best.append(min(options))
        finally:
            self.demand = saved
        fused: set[EdgeKey] = set()
        j = n
        while j > 0:
            i = best[j][1]
            fused.update(zip(path[i:j], path[i + 1 : j]))
            j = i
        return frozenset(fused)


def _components(nodes: Iterable[str], links: Iterable[EdgeKey]) -> list[set[str]]:
    """Connected components of the undirected graph `nodes` + `links` (union-find), in order of first node."""
    parent = {node: node for node in nodes}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in links:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    members: dict[str, set[str]] = {}
    for node in parent:
        members.setdefault(root(node), set()).add(node)
    return list(members.values())


def _groups(graph: JobGraph, candidates: dict[EdgeKey, str]) -> list[tuple[list[str], list[EdgeKey]]]:
    """Connected groups of operators over candidate edges, upstream groups first."""
    order = {op_id: i for i, op_id in enumerate(graph.topological_order)}
    groups = []
    for component in _components(graph.topological_order, candidates):
        members = sorted(component, key=order.__getitem__)
        edges = [e for e in candidates if e[0] in component]
        groups.append((members, edges))
    # Every input from outside a group enters its head (its one member without a fused input that is not
    # a chained source), so ordering groups by their heads orders them upstream first.
    def head_rank(group: tuple[list[str], list[EdgeKey]]) -> int:
        members, edges = group
        sources = {src for src, dst in edges if candidates[(src, dst)] == "source input"}
        targets = {dst for src, dst in edges if src not in sources}
        return min(order[m] for m in members if m not in targets and m not in sources)

    return sorted(groups, key=head_rank)


def plan_joint(
    spec: JobSpec,
    rate_rps: float,
    model: CostModel,
    options: FlinkOptions,
    seeds: Iterable[frozenset[EdgeKey]] = (),
    oracle: OracleResult | None = None,
) -> JointPlan:
    """Chains and parallelism together: the job keeps up at `rate_rps` with the fewest tasks, then the least
    CPU, that the search finds (exact on groups of few edges and on paths). `seeds` are whole-job cuts the
    search must do at least as well as (e.g. Flink's chains at the oracle's parallelism)."""
    graph = JobGraph(spec)
    oracle = oracle or oracle_parallelism(spec, rate_rps)
    candidates = _joint_candidates(graph, options)
    seeds = [frozenset(e for e in seed if e in candidates) for seed in seeds]
    search = _JointSearch(graph, rate_rps, model, candidates)
    chosen: set[EdgeKey] = set()
    for members, edges in _groups(graph, candidates):
        local_seeds = [frozenset(), frozenset(edges)] + [seed & frozenset(edges) for seed in seeds]
        cut = search.best_cut(members, edges, local_seeds)
        _, sized = search.evaluate(members, cut)
        search.commit(sized)
        chosen |= cut
    # Whole-job seeds compared as wholes: a broadcast makes one group's parallelism another's input.
    best = _joint_whole(graph, rate_rps, model, candidates, frozenset(chosen))
    for seed in seeds:
        other = _joint_whole(graph, rate_rps, model, candidates, seed)
        if other[0] < best[0]:
            best = other
    _, fused, sized = best
    return _joint_result(graph, rate_rps, model, candidates, fused, sized, oracle, search)


def _joint_whole(
    graph: JobGraph, rate_rps: float, model: CostModel, candidates: dict[EdgeKey, str], fused: frozenset[EdgeKey]
) -> tuple[_Score, frozenset[EdgeKey], list[_Sized]]:
    search = _JointSearch(graph, rate_rps, model, candidates)
    score, sized = search.evaluate(list(graph.topological_order), fused)
    return score, fused, sized


def _joint_result(
    graph: JobGraph,
    rate_rps: float,
    model: CostModel,
    candidates: dict[EdgeKey, str],
    fused: frozenset[EdgeKey],
    sized: list[_Sized],
    oracle: OracleResult,
    search: _JointSearch,
) -> JointPlan:
    parallelism = {m: chain.parallelism for chain in sized for m in chain.shape.members}
    demand = demand_rps(graph, graph.source_rates(rate_rps), parallelism)
    inputs, stages = [], []
    for chain in sorted(sized, key=lambda c: search.order[c.shape.head]):
        shape = chain.shape
        tree = [e for e in shape.internal if e[0] not in shape.sources]
        name = flink_chain_name(graph, shape.head, tree, shape.sources)
        stage_input = search.stage_input(shape, chain.parallelism)
        inputs.append(
            _StageInput(name, shape.head, shape.members, shape.internal, stage_input.composed_edges, chain.parallelism, None)
        )
    estimate = estimate_plan(graph, demand, inputs, model)
    for stage_input, stage_estimate in zip(inputs, estimate.stages):
        stages.append(
            JointStage(stage_input.name, stage_input.head, stage_input.members, stage_input.parallelism, stage_estimate)
        )
    stage_of = {m: stage for stage in stages for m in stage.members}
    edges = []
    for key, how in candidates.items():
        src, dst = key
        if key in fused:
            edges.append(JointEdge(src, dst, True, how, f"fused at p={parallelism[src]}"))
            continue
        edges.append(JointEdge(src, dst, False, "cut", _cut_reason(key, fused, stage_of, search, demand)))
    return JointPlan(
        rate_rps=rate_rps,
        stages=tuple(stages),
        edges=tuple(edges),
        estimate=estimate,
        parallelism={op.id: parallelism[op.id] for op in graph.spec.operators},
        oracle_parallelism=dict(oracle.parallelism),
        oracle_feasible=oracle.feasible,
        searched=", ".join(sorted(search.searched)) or "nothing to search",
    )


def _cut_reason(
    key: EdgeKey,
    fused: frozenset[EdgeKey],
    stage_of: dict[str, JointStage],
    search: _JointSearch,
    demand: dict[str, float],
) -> str:
    """Why a chainable edge stays cut: what fusing it (and only it) would cost, in tasks or in overload."""
    up, down = stage_of[key[0]], stage_of[key[1]]
    members = sorted(set(up.members) | set(down.members), key=search.order.__getitem__)
    inside = set(members)
    internal = [e for e in fused if e[0] in inside and e[1] in inside] + [key]
    probe = search.fork(demand)
    merged = probe.size(probe.shapes(members, internal)[0])
    if merged.score[0] > 0:
        return f"fused, the chain would not keep up ({fmt_ratio(merged.estimate.utilization)}x at p={merged.parallelism})"
    text = f"fused, the chain would need p={merged.parallelism}; cut, {up.parallelism} + {down.parallelism} tasks"
    if up.parallelism == down.parallelism:
        text += f" (`{key[1]}` must start a new chain: Flink's startNewChain)"
    return text


def _with_joint_plan(plan: FusionPlan, model: CostModel, options: FlinkOptions) -> FusionPlan:
    """The plan with what it is compared with: Flink's chaining at the spec's and at the oracle's
    parallelism, the unfused job at the oracle's, and (our mode) the joint plan; and the notes."""
    import dataclasses

    spec, rate = plan.spec, plan.rate_rps

    def flink_of(job: JobSpec) -> FusionPlan:
        return plan_fusion(job, mode="flink", rate_rps=rate, cost_model=model, flink=options, joint=False)

    flink_given = plan if plan.mode == "flink" else flink_of(spec)
    oracle = oracle_parallelism(spec, rate)
    flink_oracle = flink_of(retarget_parallelism(spec, oracle.parallelism))
    compared = {
        "spec": plan.before,
        "given": plan.after,
        "flink_given": flink_given.after,
        "oracle": flink_oracle.before,
        "flink_oracle": flink_oracle.after,
    }
    joint = None
    if plan.mode == "ours":
        graph = JobGraph(spec)
        seed = frozenset(e for stage in flink_oracle.stages for e in internal_edges(graph, stage.members))
        joint = plan_joint(spec, rate, model, options, seeds=[seed], oracle=oracle)
        compared["joint"] = joint.estimate
    notes = _notes(plan, flink_given, flink_oracle, joint)
    return dataclasses.replace(plan, joint=joint, compared=compared, notes=tuple(notes))


def _overload(estimate: PlanEstimate) -> str:
    worst = max(estimate.stages, key=lambda s: s.utilization)
    return f"`{worst.name}` at {fmt_ratio(worst.utilization)}x (p={worst.parallelism})"


def _keeps_up(estimate: PlanEstimate) -> bool:
    return estimate.max_utilization <= 1 + 1e-9


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _tasks_cpu(estimate: PlanEstimate) -> str:
    return f"{_plural(estimate.tasks, 'task')}, {fmt_cpu(estimate.cpu_us_per_s)}"


def _notes(plan: FusionPlan, flink_given: FusionPlan, flink_oracle: FusionPlan, joint: JointPlan | None) -> list[str]:
    """Plain sentences for the summary: whether the spec keeps up, why this plan saves less than Flink's
    chaining where it does, and the joint plan against Flink's chaining at the parallelism the job needs."""
    notes = []
    rate = f"{plan.rate_rps:,.0f} rec/s"
    before = plan.before
    if _keeps_up(before):
        notes.append(f"The spec as written keeps up at its peak rate ({rate}).")
    else:
        share = 100.0 / before.max_utilization
        notes.append(
            f"The spec as written cannot keep up at its peak rate ({rate}): {_overload(before)}; "
            f"the job would run at {share:.0f}% of the target."
        )
    if plan.mode == "ours":
        ours, flink = plan.after, flink_given.after
        less_cpu = flink.cpu_us_per_s < ours.cpu_us_per_s * (1 - 1e-9) - 1e-6
        fewer_tasks = flink.tasks < ours.tasks
        if less_cpu or fewer_tasks:
            ours_fused = {(b.src, b.dst) for b in plan.boundaries if b.fused}
            missing = [b for b in flink_given.boundaries if b.fused and (b.src, b.dst) not in ours_fused]
            by_edge = {(b.src, b.dst): b for b in plan.boundaries}
            whys = []
            for boundary in missing[:3]:
                ours_boundary = by_edge[(boundary.src, boundary.dst)]
                reason = ours_boundary.reasons[0] if ours_boundary.reasons else "not fused"
                whys.append(f"`{boundary.src} -> {boundary.dst}`: {reason}")
            if len(missing) > 3:
                whys.append(f"{len(missing) - 3} more in the edges table")
            gap = []
            if less_cpu:
                gap.append(f"{fmt_cpu(ours.cpu_us_per_s - flink.cpu_us_per_s)} less CPU")
            if fewer_tasks:
                gap.append(_plural(ours.tasks - flink.tasks, "fewer task"))
            text = (
                f"At the spec's parallelism this plan fuses less than Flink's chaining (--mode flink runs "
                f"with {' and '.join(gap)}). " + ("Why: " + "; ".join(whys) + "." if whys else "")
            )
            if flink.max_utilization > max(1.0, ours.max_utilization) * (1 + 1e-9):
                text += f" Flink's chains would run {_overload(flink)}, this plan's worst is {fmt_ratio(ours.max_utilization)}x."
            notes.append(text.strip())
    fo = flink_oracle.after
    flink_text = f"Flink's chaining at the oracle's parallelism: {_tasks_cpu(fo)}"
    if _keeps_up(fo):
        flink_text += ", keeps up."
    else:
        flink_text += f", does not keep up: {_overload(fo)}, chained operators share one thread."
    if joint is None:
        notes.append(flink_text)
        return notes
    est = joint.estimate
    vertices = f"{est.vertices} vert{'ices' if est.vertices != 1 else 'ex'}"
    text = f"Joint plan (chains and parallelism for {rate}): {_tasks_cpu(est)} in {vertices}"
    if joint.keeps_up:
        text += ", keeps up."
    elif not joint.oracle_feasible:
        text += f", cannot keep up: no parallelism within max_parallelism does ({_overload(est)})."
    else:
        text += f", does not keep up: {_overload(est)}."
    notes.append(text)
    notes.append(flink_text)
    if est.tasks > fo.tasks:
        why = "its chains do not keep up" if not _keeps_up(fo) else "the search did not find Flink's cut (please report)"
        notes.append(f"The joint plan runs {_plural(est.tasks - fo.tasks, 'more task')} than Flink's chaining there: {why}.")
    if est.cpu_us_per_s > fo.cpu_us_per_s * (1 + 1e-9) + 1e-6:
        flink_fused = {e for stage in flink_oracle.stages for e in internal_edges(JobGraph(plan.spec), stage.members)}
        cut = [e for e in joint.edges if not e.fused and (e.src, e.dst) in flink_fused]
        extra = fmt_cpu(est.cpu_us_per_s - fo.cpu_us_per_s)
        if not _keeps_up(fo):
            why = "Flink's chains do not keep up"
        elif cut:
            why = "it cuts " + ", ".join(f"`{e.src} -> {e.dst}`" for e in cut[:3]) + " to run fewer tasks"
        else:
            why = "Flink's chaining copies less on this job"
        notes.append(f"The joint plan uses {extra} more CPU than Flink's chaining there: {why}.")
    return notes
