"""How a job runs on the local engine: its chains (one OS process per chain instance), channels and schemas.

Built once per deployment in the coordinating process, then handed (pickled) to every worker. Everything a
spec cannot run is found here, before a single process starts: an operator the engine has no semantics for,
a column that is not there, a nexmark source asked for two event kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamtune_cli.errors import UsageError
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec, OperatorKind, Partitioning

__all__ = [
    "SINK_MODES",
    "SourcePlan",
    "ChainPlan",
    "EnginePlan",
    "build_plan",
    "chain_groups",
]

SINK_MODES = ("count", "blackhole", "parquet")


@dataclass(frozen=True)
class OutEdge:
    """An edge that leaves a chain: where a member's output goes and how it is partitioned."""

    src: str
    dst: str
    dst_chain: int
    dst_parallelism: int
    dst_max_parallelism: int
    partitioning: str  # forward | hash | rebalance | broadcast
    key: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourcePlan:
    """What a source generates: a nexmark event kind, datagen rows, or a Parquet file's rows."""

    generator: str  # nexmark | datagen | parquet
    kind: str | None  # nexmark event kind
    share: float  # fraction of the job's total target rate
    splits: int  # the source's fixed number of splits (its max_parallelism)
    record_bytes: int = 100
    keys: int = 10_000
    file: str | None = None  # parquet: the file, resolved against the spec's folder
    time_field: str | None = None  # parquet: the event-time column (None: date_time if present)


@dataclass(frozen=True)
class ChainPlan:
    """One fused chain: a head and the members its records reach without leaving the process."""

    index: int
    head: str
    members: tuple[str, ...]  # topological order, head first
    parallelism: int
    internal: dict[str, tuple[str, ...]]  # member -> members it feeds inside the chain
    external: dict[str, tuple[OutEdge, ...]]  # member -> edges that leave the chain
    inputs: tuple[tuple[str, str], ...]  # (upstream operator, partitioning) of the head's in-edges

    @property
    def name(self) -> str:
        return " -> ".join(self.members)

    def channels(self, instance: int, plan: "EnginePlan") -> set[tuple[str, int]]:
        """The (upstream operator, upstream instance) channels instance `instance` hears from."""
        found: set[tuple[str, int]] = set()
        for src, partitioning in self.inputs:
            upstream = plan.chain_of[src]
            p = plan.chains[upstream].parallelism
            if partitioning == "forward":
                found.add((src, instance))
            else:
                found.update((src, i) for i in range(p))
        return found


@dataclass(frozen=True)
class EnginePlan:
    spec: JobSpec
    chains: tuple[ChainPlan, ...]
    chain_of: dict[str, int]
    schemas: dict[str, Any]  # operator id -> polars Schema of what it emits (sources: what they generate)
    sources: dict[str, SourcePlan]
    fusion: bool
    sink_mode: str = "count"
    max_parallelism: dict[str, int] = field(default_factory=dict)

    @property
    def processes(self) -> int:
        return sum(chain.parallelism for chain in self.chains)


def chain_groups(spec: JobSpec, fusion: bool = True) -> list[list[str]]:
    """Members of each chain, in topological order of heads: Flink's chaining rule (forward edge, equal
    parallelism, single input, chaining strategies and slot sharing groups allow it), none when fusion is off."""
    from streamtune_cli.fusion.flink_rules import is_chainable

    graph = JobGraph(spec)
    parent: dict[str, str] = {}
    if fusion:
        for edge in spec.edges:
            if is_chainable(graph, edge):
                parent[edge.dst] = edge.src

    def head(op_id: str) -> str:
        while op_id in parent:
            op_id = parent[op_id]
        return op_id

    groups: dict[str, list[str]] = {}
    for op_id in graph.topological_order:
        groups.setdefault(head(op_id), []).append(op_id)
    return list(groups.values())


def _source_plan(spec: JobSpec, op_id: str, graph: JobGraph, total_rate: float, spec_dir: str | None) -> SourcePlan:
    op = spec.operator(op_id)
    rates = graph.source_rates(total_rate)
    share = rates[op_id] / total_rate
    generator = op.generator or "datagen"
    if generator == "parquet":
        assert op.path is not None  # the spec requires it
        path = Path(op.path).expanduser()
        if not path.is_absolute() and spec_dir is not None:
            path = Path(spec_dir) / path
        return SourcePlan("parquet", None, share, op.max_parallelism, file=str(path), time_field=op.event_time)
    if generator == "nexmark":
        events = op.events or ["bid"]
        if len(set(events)) != 1:
            raise UsageError(
                f"operator {op_id!r}: the local engine's nexmark source generates one event kind per source, "
                f"got events {events} (use one source per kind)"
            )
        return SourcePlan("nexmark", events[0], share, op.max_parallelism)
    return SourcePlan(
        "datagen", None, share, op.max_parallelism, record_bytes=op.output_record_bytes or 100, keys=10_000
    )


def _polars_schema(arrow_schema: Any) -> Any:
    import polars as pl
    import pyarrow as pa

    return pl.from_arrow(pa.Table.from_batches([], schema=arrow_schema)).schema


def source_schema(source: SourcePlan) -> Any:
    from streamtune_cli.executors.local import nexmark

    if source.generator == "nexmark":
        return _polars_schema(nexmark.schema(source.kind))
    if source.generator == "parquet":
        from streamtune_cli.executors.local.files import parquet_schema

        return _polars_schema(parquet_schema(source.file, source.time_field))
    return _polars_schema(nexmark.datagen_schema(source.record_bytes))


def build_plan(
    spec: JobSpec, *, fusion: bool = True, sink_mode: str = "count", spec_dir: str | None = None
) -> EnginePlan:
    """The engine plan of `spec` as deployed (pass the retargeted spec: forward edges already at equal p);
    `spec_dir` is the folder a parquet source's relative path is resolved against."""
    from streamtune_cli.executors.local.operators import OperatorSemanticsError, build_logic

    if sink_mode not in SINK_MODES:
        raise UsageError(f"unknown sink {sink_mode!r} (choose from {', '.join(SINK_MODES)})")
    graph = JobGraph(spec)
    for edge in spec.edges:
        if edge.partitioning == Partitioning.forward and spec.operator(edge.src).parallelism != spec.operator(edge.dst).parallelism:
            raise UsageError(f"forward edge {edge.src} -> {edge.dst} joins unequal parallelism (retarget the spec first)")
    schemas: dict[str, Any] = {}
    sources: dict[str, SourcePlan] = {}
    for op_id in graph.topological_order:
        op = spec.operator(op_id)
        if op.kind == OperatorKind.source:
            sources[op_id] = _source_plan(spec, op_id, graph, spec.workload.rate_rps, spec_dir)
            try:
                schemas[op_id] = source_schema(sources[op_id])
            except ValueError as exc:
                raise UsageError(f"job {spec.name!r}: source {op_id!r}: {exc}") from None
            continue
        inputs = {up: schemas[up] for up in graph.upstream(op_id)}
        if op.kind == OperatorKind.sink:
            schemas[op_id] = None
            continue
        try:
            schemas[op_id] = build_logic(op, inputs).output_schema
        except OperatorSemanticsError as exc:
            raise UsageError(f"job {spec.name!r}: {exc}") from None
    groups = chain_groups(spec, fusion)
    chain_of = {member: i for i, group in enumerate(groups) for member in group}
    chains = []
    for i, group in enumerate(groups):
        members = set(group)
        internal: dict[str, tuple[str, ...]] = {}
        external: dict[str, tuple[OutEdge, ...]] = {}
        for member in group:
            inside, outside = [], []
            for edge in graph.out_edges(member):
                if edge.dst in members:
                    inside.append(edge.dst)
                else:
                    dst = spec.operator(edge.dst)
                    outside.append(
                        OutEdge(
                            src=member,
                            dst=edge.dst,
                            dst_chain=chain_of[edge.dst],
                            dst_parallelism=dst.parallelism,
                            dst_max_parallelism=dst.max_parallelism,
                            partitioning=edge.partitioning.value,
                            key=tuple(edge.key or ()),
                        )
                    )
            internal[member] = tuple(inside)
            external[member] = tuple(outside)
        head = group[0]
        inputs = tuple((e.src, e.partitioning.value) for e in graph.in_edges(head))
        chains.append(
            ChainPlan(
                index=i,
                head=head,
                members=tuple(group),
                parallelism=spec.operator(head).parallelism,
                internal=internal,
                external=external,
                inputs=inputs,
            )
        )
    return EnginePlan(
        spec=spec,
        chains=tuple(chains),
        chain_of=chain_of,
        schemas=schemas,
        sources=sources,
        fusion=fusion,
        sink_mode=sink_mode,
        max_parallelism={op.id: op.max_parallelism for op in spec.operators},
    )
