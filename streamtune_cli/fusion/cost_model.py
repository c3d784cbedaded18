"""Fusion's cost model: what an exchange costs (serialization CPU, bytes, queue hops, latency), what a fused
stage costs per record and whether it keeps up (capacity via streamtune_cli.capacity), and a whole-plan
estimate. Formulas are documented in docs/fusion.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Protocol, Sequence

from streamtune_cli.capacity import capacity_rps, usl_params
from streamtune_cli.errors import UsageError
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import Edge, Operator, OperatorKind, Partitioning, Scaling

from streamtune_cli.fusion.sql_rewrite import rewrite_predicate_through

__all__ = [
    "CostModel",
    "StageCost",
    "PlanEstimate",
    "StageEstimate",
    "stage_capacity_rps",
    "estimate_plan",
    "estimate_stage",
    "stage_stand_in",
    "exchange_records_per_s",
]

# Two capacities this close are equal: float sums taken in a different order must not flip a decision.
CAPACITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class CostModel:
    """Per-record prices of moving a record between operators (defaults are assumptions; override per run).

    An operator's `cost_us` is its CPU per input record when it runs as its own task, so it includes
    deserializing its input and serializing its output. Fusing an edge saves that serialization on both
    sides; a chained edge still pays Flink's defensive copy (object reuse is off by default), a composed
    edge (one pass over stateless operators) pays nothing.
    """

    serde_us_per_record: float = 0.1  # per side (serialize or deserialize), fixed part
    serde_us_per_byte: float = 0.001  # per side, per byte (~1 GB/s)
    copy_us_per_record: float = 0.05  # chained hand-over: serializer.copy of the record
    copy_us_per_byte: float = 0.0005
    hop_latency_ms: float = 0.5  # queueing + buffer hand-over per network hop under load
    max_saving_share: float = 0.5  # a fused edge saves at most this share of the consumer's cost_us

    def __post_init__(self) -> None:
        values = asdict(self)
        bad = [name for name, value in values.items() if not value >= 0]
        if bad:
            raise UsageError(f"cost model values must be >= 0: {', '.join(bad)}")
        if self.copy_us_per_record > self.serde_us_per_record * 2 or self.copy_us_per_byte > self.serde_us_per_byte * 2:
            raise UsageError("a chained copy cannot cost more than serializing and deserializing the record")
        if not 0 < self.max_saving_share < 1:
            raise UsageError("max_saving_share must be between 0 and 1")

    def serde_us(self, record_bytes: float) -> float:
        """Serialize at the producer plus deserialize at the consumer, per record crossing an exchange."""
        return 2.0 * (self.serde_us_per_record + self.serde_us_per_byte * record_bytes)

    def copy_us(self, record_bytes: float) -> float:
        return self.copy_us_per_record + self.copy_us_per_byte * record_bytes

    def fused_saving_us(self, record_bytes: float, consumer_cost_us: float, composed: bool) -> float:
        """CPU saved per record on a fused edge, capped by a share of the consumer's own cost: every member
        but the first keeps at least (1 - share) of its cost, so a fused stage never costs zero or less."""
        saved = self.serde_us(record_bytes) - (0.0 if composed else self.copy_us(record_bytes))
        return min(saved, self.max_saving_share * consumer_cost_us)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _filter_can_move(op: Operator) -> bool:
    return op.kind == OperatorKind.filter and op.predicate is not None and op.columns is None and op.selectivity <= 1


def _transparent(op: Operator) -> bool:
    # A filter may run before a map/project that keeps every record, once its predicate is rewritten.
    return op.kind in (OperatorKind.map, OperatorKind.project) and op.columns is not None and op.selectivity == 1


@dataclass
class StageCost:
    """Running cost of a linear fused stage, per record entering its head.

    `eval_order` is the order members see a record: a filter moves before the maps/projections it can be
    rewritten through (predicate pushdown), which only ever lowers the cost because those members keep every
    record (selectivity 1) and the filter keeps at most every record.
    """

    members: list[Operator]
    eval_order: list[int] = field(default_factory=list)  # indexes into members
    seen: list[float] = field(default_factory=list)  # per eval position: records seen per head record
    cost_us: float = 0.0
    through: float = 1.0  # records leaving the last member per head record
    moved: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (filter, members it moved before)

    @classmethod
    def single(cls, op: Operator) -> "StageCost":
        return cls(members=[op], eval_order=[0], seen=[1.0], cost_us=op.cost_us, through=op.selectivity)

    def extended(self, op: Operator, model: CostModel, *, composed: bool, pushdown: bool) -> "StageCost":
        """This stage with `op` appended behind its last member (the edge between them fused)."""
        producer = self.members[-1]
        saving = model.fused_saving_us(producer.output_record_bytes, op.cost_us, composed)
        cost = self.cost_us - self.through * saving
        eval_order, seen = list(self.eval_order), list(self.seen)
        moved_before: list[str] = []
        position = len(eval_order)
        if pushdown and _filter_can_move(op):
            predicate = op.predicate
            assert predicate is not None
            while position > 0:
                before = self.members[eval_order[position - 1]]
                if not _transparent(before):
                    break
                rewritten = rewrite_predicate_through(predicate, before)
                if rewritten is None:
                    break
                predicate = rewritten
                position -= 1
                moved_before.append(before.id)
        # Members the filter moves before keep every record, so the filter sees what the stage emits so far.
        for i in range(position, len(seen)):
            cost -= self.members[eval_order[i]].cost_us * seen[i] * (1.0 - op.selectivity)
            seen[i] *= op.selectivity
        cost += op.cost_us * self.through
        eval_order.insert(position, len(self.members))
        seen.insert(position, self.through)
        moved = list(self.moved)
        if moved_before:
            moved.append((op.id, tuple(reversed(moved_before))))
        return StageCost(
            members=self.members + [op],
            eval_order=eval_order,
            seen=seen,
            cost_us=cost,
            through=self.through * op.selectivity,
            moved=moved,
        )

    @property
    def scaling(self) -> Scaling:
        """The most contended member sets the stage's USL parameters (conservative)."""
        params = [usl_params(op) for op in self.members]
        return Scaling(sigma=max(p[0] for p in params), kappa=max(p[1] for p in params))

    def as_operator(self, head_id: str | None = None) -> Operator:
        """A stand-in operator for capacity checks: the head with the stage's cost and scaling."""
        head = self.members[0]
        return head.model_copy(update={"id": head_id or head.id, "cost_us": self.cost_us, "scaling": self.scaling})


class _StageView(JobGraph):
    """A JobGraph whose head operator (and optionally some edges) are replaced, without copying the graph."""

    def __init__(self, base: JobGraph, operators: dict[str, Operator], edges: dict[tuple[str, str], Edge]):
        self.spec = base.spec
        self._base = base
        self._operators, self._edges, self._up, self._down = base._operators, base._edges, base._up, base._down
        self._stand_ins = operators
        self._edge_stand_ins = edges

    @property
    def nx(self):  # type: ignore[no-untyped-def, override]
        return self._base.nx  # the same structure: built once, by the base, if anything asks

    @property
    def topological_order(self) -> list[str]:  # type: ignore[override]
        return self._base.topological_order

    def operator(self, op_id: str) -> Operator:
        return self._stand_ins.get(op_id) or JobGraph.operator(self, op_id)

    def edge(self, src: str, dst: str) -> Edge:
        return self._edge_stand_ins.get((src, dst)) or JobGraph.edge(self, src, dst)


def stage_capacity_rps(
    graph: JobGraph,
    head: str,
    stand_in: Operator,
    parallelism: int,
    edges: dict[tuple[str, str], Edge] | None = None,
) -> float:
    """Capacity of a stage at `parallelism`, by the shared capacity model (USL, skew on a hash input)."""
    view = _StageView(graph, {head: stand_in}, edges or {})
    return capacity_rps(view, head, parallelism)


def exchange_records_per_s(graph: JobGraph, demand: dict[str, float], edge: Edge) -> tuple[float, float]:
    """(records serialized per second, records delivered per second) on an exchange: a broadcast serializes
    each record once and delivers it to every downstream instance."""
    up = graph.operator(edge.src)
    produced = demand[edge.src] * up.selectivity
    fan = graph.operator(edge.dst).parallelism if edge.partitioning == Partitioning.broadcast else 1
    return produced, produced * fan


@dataclass(frozen=True)
class StageEstimate:
    name: str
    members: tuple[str, ...]
    parallelism: int
    input_rps: float
    cpu_us_per_s: float
    capacity_rps: float

    @property
    def utilization(self) -> float:
        if self.capacity_rps <= 0:
            return float("inf")
        return self.input_rps / self.capacity_rps


@dataclass(frozen=True)
class PlanEstimate:
    """What a plan costs per second at the target rate."""

    cpu_us_per_s: float
    serialized_bytes_per_s: float
    network_bytes_per_s: float
    hops_per_s: float
    latency_ms: float
    vertices: int
    tasks: int
    stages: tuple[StageEstimate, ...]

    @property
    def max_utilization(self) -> float:
        return max((s.utilization for s in self.stages), default=0.0)

    @property
    def sustainable_fraction(self) -> float:
        """Share of the target rate the plan sustains (1.0 when no stage is over capacity)."""
        worst = self.max_utilization
        return 1.0 if worst <= 1.0 else 1.0 / worst

    def as_dict(self) -> dict[str, float | int | str]:
        worst = max(self.stages, key=lambda s: s.utilization, default=None)
        return {
            "cpu_us_per_s": self.cpu_us_per_s,
            "serialized_bytes_per_s": self.serialized_bytes_per_s,
            "network_bytes_per_s": self.network_bytes_per_s,
            "hops_per_s": self.hops_per_s,
            "latency_ms": self.latency_ms,
            "vertices": self.vertices,
            "tasks": self.tasks,
            "max_utilization": self.max_utilization,
            "sustainable_fraction": self.sustainable_fraction,
            "bottleneck": worst.name if worst is not None else "",
        }


def _stage_cpu_us_per_s(
    graph: JobGraph,
    demand: dict[str, float],
    members: Sequence[str],
    internal: Iterable[tuple[str, str]],
    composed: set[tuple[str, str]],
    model: CostModel,
    seen_rps: dict[str, float] | None,
) -> float:
    """Absolute CPU of one stage (any shape): members' work at the rates they see, minus fused-edge savings."""
    cpu = 0.0
    for op_id in members:
        rate = seen_rps[op_id] if seen_rps is not None else demand[op_id]
        cpu += rate * graph.operator(op_id).cost_us
    for src, dst in internal:
        up, down = graph.operator(src), graph.operator(dst)
        records = demand[src] * up.selectivity
        cpu -= records * model.fused_saving_us(up.output_record_bytes, down.cost_us, (src, dst) in composed)
    return cpu


def estimate_plan(
    graph: JobGraph,
    demand: dict[str, float],
    stages: Sequence["StageLike"],
    model: CostModel,
    edges: dict[tuple[str, str], Edge] | None = None,
) -> PlanEstimate:
    """Cost of running `graph` as `stages` (every edge between two stages is an exchange).

    `edges` replaces the partitioning of edges whose exchange moved (a filter pulled before a hash edge).
    """
    edges = edges or {}
    stage_of = {op_id: i for i, stage in enumerate(stages) for op_id in stage.members}
    cpu = ser_bytes = net_bytes = hops = 0.0
    hop_weight: dict[tuple[str, str], int] = {}
    for src, dst in graph.edge_pairs():
        edge = edges.get((src, dst)) or graph.edge(src, dst)
        if stage_of[src] == stage_of[dst]:
            hop_weight[(src, dst)] = 0
            continue
        hop_weight[(src, dst)] = 1
        serialized, delivered = exchange_records_per_s(graph, demand, edge)
        record_bytes = graph.operator(src).output_record_bytes
        ser_bytes += serialized * record_bytes
        net_bytes += delivered * record_bytes
        hops += delivered
    stage_estimates = []
    for stage in stages:
        stage_estimates.append(estimate_stage(graph, demand, stage, model, edges))
        cpu += stage_estimates[-1].cpu_us_per_s
    # Latency: the most exchange hops on any source-to-sink path, each costing a queue hop.
    depth: dict[str, int] = {}
    for op_id in graph.topological_order:
        depth[op_id] = max((depth[u] + hop_weight[(u, op_id)] for u in graph.upstream(op_id)), default=0)
    longest = max((depth[s] for s in graph.sinks), default=0)
    return PlanEstimate(
        cpu_us_per_s=cpu,
        serialized_bytes_per_s=ser_bytes,
        network_bytes_per_s=net_bytes,
        hops_per_s=hops,
        latency_ms=longest * model.hop_latency_ms,
        vertices=len(stages),
        tasks=sum(stage.parallelism for stage in stages),
        stages=tuple(stage_estimates),
    )


def estimate_stage(
    graph: JobGraph,
    demand: dict[str, float],
    stage: "StageLike",
    model: CostModel,
    edges: dict[tuple[str, str], Edge] | None = None,
) -> StageEstimate:
    """One stage's CPU, input rate and capacity at `demand`: the stage runs as one operator whose cost per
    entering record is its CPU over its input, with its most contended member's scaling (any shape)."""
    stage_cpu = _stage_cpu_us_per_s(
        graph, demand, stage.members, stage.internal_edges, set(stage.composed_edges), model, stage.seen_rps
    )
    members = set(stage.members)
    entries = [m for m in stage.members if not any(u in members for u in graph.upstream(m))]
    input_rps = sum(demand[m] for m in entries)
    stand_in = stage_stand_in(graph, stage, stage_cpu, input_rps)
    return StageEstimate(
        name=stage.name,
        members=tuple(stage.members),
        parallelism=stage.parallelism,
        input_rps=input_rps,
        cpu_us_per_s=stage_cpu,
        capacity_rps=stage_capacity_rps(graph, stage.head, stand_in, stage.parallelism, edges),
    )


def stage_stand_in(graph: JobGraph, stage: "StageLike", cpu_us_per_s: float, input_rps: float) -> Operator:
    """The operator a stage behaves like for capacity: its head with the stage's cost per entering record."""
    if input_rps > 0:
        per_record = cpu_us_per_s / input_rps
    else:
        per_record = sum(graph.operator(m).cost_us for m in stage.members)
    return graph.operator(stage.head).model_copy(
        update={"cost_us": max(per_record, 1e-12), "scaling": _max_scaling(graph, stage.members)}
    )


def _max_scaling(graph: JobGraph, members: Iterable[str]) -> Scaling:
    params = [usl_params(graph.operator(m)) for m in members]
    return Scaling(sigma=max(p[0] for p in params), kappa=max(p[1] for p in params))


class StageLike(Protocol):
    """What estimate_plan reads from a stage."""

    name: str
    head: str
    members: Sequence[str]
    internal_edges: Sequence[tuple[str, str]]
    composed_edges: Sequence[tuple[str, str]]
    parallelism: int
    seen_rps: dict[str, float] | None
