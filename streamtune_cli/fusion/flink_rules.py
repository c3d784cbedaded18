"""Flink's operator chaining rule for rule (StreamingJobGraphGenerator.isChainable / isChainableSource) and
Flink's names for chained job vertices ("Source: a -> b -> (c, d)")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import ChainingStrategy, Edge, ExchangeMode, Operator, OperatorKind, Partitioning

__all__ = [
    "FLINK_RULES",
    "FlinkOptions",
    "RuleFailure",
    "FlinkChain",
    "PlainRoles",
    "Roles",
    "chain_failures",
    "input_failures",
    "is_chainable",
    "source_chain_failures",
    "flink_chains",
    "flink_operator_name",
    "flink_chain_name",
    "edge_label",
    "internal_edges",
]

# Every condition StreamingJobGraphGenerator checks before it chains an edge (isChainable ->
# isChainableInput -> areOperatorsChainable / arePartitionerAndExchangeModeChainable).
FLINK_RULES: tuple[tuple[str, str], ...] = (
    ("single_input", "the downstream operator has exactly one input edge (isChainable)"),
    ("chaining_enabled", "operator chaining is enabled for the job (pipeline.operator-chaining.enabled)"),
    ("slot_sharing_group", "both operators are in the same slot sharing group"),
    ("upstream_strategy", "the upstream chaining strategy is not NEVER"),
    ("downstream_strategy", "the downstream strategy is ALWAYS, or HEAD_WITH_SOURCES behind a source (HEAD/NEVER block)"),
    (
        "yielding",
        (
            "a yielding operator (a sink writer, async I/O) does not chain behind a chain whose head is a "
            "legacy SourceFunction source (areOperatorsChainable)"
        ),
    ),
    ("parallelism", "both operators have the same parallelism"),
    (
        "max_parallelism",
        (
            "both operators have the same max parallelism, checked only when "
            "pipeline.operator-chaining.chain-operators-with-different-max-parallelism is false"
        ),
    ),
    ("forward", "the edge is forward (hash, rebalance and broadcast edges never chain)"),
    ("pipelined", "the exchange is not a batch (blocking) exchange"),
    ("union", "no other edge feeds the same input of the downstream operator (matters for source chaining)"),
)


@dataclass(frozen=True)
class FlinkOptions:
    """Cluster settings that change chaining but are not part of a job spec.

    Flink's default for chain-operators-with-different-max-parallelism is true (flink-core PipelineOptions),
    so the max-parallelism rule only bites when a user turns that option off.
    """

    chain_different_max_parallelism: bool = True


@dataclass(frozen=True)
class RuleFailure:
    """One Flink rule an edge breaks, with the reason as a report shows it."""

    rule: str
    reason: str


class Roles(Protocol):
    """How the rules see an operator that may already stand for a fused chain: as a downstream operator it
    is its first member, as an upstream operator its last one (whose kind decides HEAD_WITH_SOURCES)."""

    def head(self, op_id: str) -> str: ...

    def exit(self, op_id: str) -> str: ...

    def exit_is_source(self, op_id: str) -> bool: ...

    def first_operator(self, op_id: str) -> Operator:
        """The spec operator a (possibly fused) operator starts with: its legacy_source and yields."""
        ...


class PlainRoles:
    """Every operator is itself (a spec nobody fused yet)."""

    def __init__(self, graph: JobGraph):
        self._graph = graph

    def head(self, op_id: str) -> str:
        return op_id

    def exit(self, op_id: str) -> str:
        return op_id

    def exit_is_source(self, op_id: str) -> bool:
        return self._graph.operator(op_id).kind == OperatorKind.source

    def first_operator(self, op_id: str) -> Operator:
        return self._graph.operator(op_id)


def _upstream_chain_head(graph: JobGraph, op_id: str, options: "FlinkOptions", roles: Roles) -> str:
    """getHeadOperator: walk up from `op_id` while it has one input edge and that edge chains."""
    seen = {op_id}
    while graph.in_degree(op_id) == 1:
        edge = graph.in_edges(op_id)[0]
        if edge.src in seen or not is_chainable(graph, edge, options, roles):
            break
        op_id = edge.src
        seen.add(op_id)
    return op_id


def edge_label(edge: Edge) -> str:
    """`hash edge on `auction``, `rebalance edge`: how a report names a non-forward edge."""
    if edge.partitioning == Partitioning.hash:
        return "hash edge on " + ", ".join(f"`{k}`" for k in edge.key or [])
    return f"{edge.partitioning.value} edge"


def _input_position(graph: JobGraph, edge: Edge) -> int:
    """Flink's type number: a two-input operator (join) has inputs 1 and 2; every other input is 0 (a union)."""
    down = graph.operator(edge.dst)
    if down.kind != OperatorKind.join:
        return 0
    if down.join is not None:
        return 1 if edge.src == down.join.left else 2
    return 1 + graph.upstream(edge.dst).index(edge.src)


def input_failures(
    graph: JobGraph,
    edge: Edge,
    options: FlinkOptions = FlinkOptions(),
    *,
    roles: Roles | None = None,
    check_union: bool = True,
) -> list[RuleFailure]:
    """Rules of isChainableInput: everything except the single-input rule.

    The union rule only matters where the downstream operator has several inputs, i.e. for source
    chaining; isChainable's single-input rule already covers it.
    """
    roles = roles or PlainRoles(graph)
    up, down = graph.operator(edge.src), graph.operator(edge.dst)
    up_name, down_name = roles.exit(up.id), roles.head(down.id)
    failures: list[RuleFailure] = []
    if not graph.spec.chaining_enabled:
        failures.append(RuleFailure("chaining_enabled", "chaining disabled for the job (chaining_enabled: false)"))
    if up.slot_sharing_group != down.slot_sharing_group:
        failures.append(
            RuleFailure(
                "slot_sharing_group",
                f"slot sharing group `{up.slot_sharing_group}` vs `{down.slot_sharing_group}`",
            )
        )
    if up.chaining == ChainingStrategy.never:
        failures.append(RuleFailure("upstream_strategy", f"`{up_name}` chaining: never"))
    if down.chaining in (ChainingStrategy.never, ChainingStrategy.head):
        failures.append(RuleFailure("downstream_strategy", f"`{down_name}` chaining: {down.chaining.value}"))
    elif down.chaining == ChainingStrategy.head_with_sources and not roles.exit_is_source(up.id):
        failures.append(
            RuleFailure(
                "downstream_strategy",
                f"`{down_name}` chaining: head_with_sources and `{up_name}` is not a source",
            )
        )
    if roles.first_operator(down.id).yields:
        head = _upstream_chain_head(graph, up.id, options, roles)
        original = roles.first_operator(head)
        if original.kind == OperatorKind.source and original.legacy_source:
            failures.append(
                RuleFailure("yielding", f"`{down_name}` yields (a writer or async operator) behind the legacy source `{roles.head(head)}`")
            )
    if up.parallelism != down.parallelism:
        failures.append(RuleFailure("parallelism", f"parallelism {up.parallelism} vs {down.parallelism}"))
    if not options.chain_different_max_parallelism and up.max_parallelism != down.max_parallelism:
        failures.append(
            RuleFailure("max_parallelism", f"max parallelism {up.max_parallelism} vs {down.max_parallelism}")
        )
    if edge.partitioning != Partitioning.forward:
        failures.append(RuleFailure("forward", edge_label(edge)))
    if edge.exchange == ExchangeMode.batch:
        failures.append(RuleFailure("pipelined", "batch exchange"))
    if check_union and graph.in_degree(edge.dst) > 1:
        position = _input_position(graph, edge)
        for other in graph.in_edges(edge.dst):
            if other.src != edge.src and _input_position(graph, other) == position:
                failures.append(RuleFailure("union", f"`{down_name}` unions this input with `{roles.exit(other.src)}`"))
                break
    return failures


def chain_failures(
    graph: JobGraph,
    edge: Edge,
    options: FlinkOptions = FlinkOptions(),
    *,
    roles: Roles | None = None,
) -> list[RuleFailure]:
    """Every rule of isChainable the edge breaks (empty: Flink chains it)."""
    roles = roles or PlainRoles(graph)
    failures = []
    n_inputs = graph.in_degree(edge.dst)
    if n_inputs != 1:
        failures.append(RuleFailure("single_input", f"`{roles.head(edge.dst)}` has {n_inputs} inputs"))
    failures += input_failures(graph, edge, options, roles=roles, check_union=False)
    # The edge's own type reads best first in a report ("hash edge on `k`; parallelism 2 vs 4").
    return sorted(failures, key=lambda f: f.rule not in ("single_input", "forward", "pipelined"))


def is_chainable(
    graph: JobGraph, edge: Edge, options: FlinkOptions = FlinkOptions(), roles: Roles | None = None
) -> bool:
    return not chain_failures(graph, edge, options, roles=roles)


def source_chain_failures(
    graph: JobGraph, source_id: str, options: FlinkOptions = FlinkOptions(), roles: Roles | None = None
) -> list[str]:
    """Why a source is not chained as an input of its consumer (isChainableSource); empty when it is.

    Only FLIP-27 sources (SourceOperatorFactory) qualify: a `legacy_source` (a SourceFunction, such as Flink
    2.3's SQL `datagen`) never does; an operator that already stands for `source -> ...` does not either (its
    output leaves the chain's last member).
    """
    roles = roles or PlainRoles(graph)
    if not roles.exit_is_source(source_id):
        return [f"`{roles.exit(source_id)}` is not a source"]
    if roles.first_operator(source_id).legacy_source:
        return [f"`{source_id}` is a legacy SourceFunction source"]
    out = graph.out_edges(source_id)
    if len(out) != 1:
        return [f"`{source_id}` has {len(out)} outputs"]
    target = graph.operator(out[0].dst)
    if target.chaining != ChainingStrategy.head_with_sources:
        return [f"`{target.id}` chaining: {target.chaining.value}"]
    return [f.reason for f in input_failures(graph, out[0], options, roles=roles)]


@dataclass(frozen=True)
class FlinkChain:
    """One job vertex as Flink builds it: a head, its chained sources, and the chained tree below the head."""

    head: str
    members: tuple[str, ...]  # topological order, chained sources included
    chained_sources: tuple[str, ...]
    internal_edges: tuple[tuple[str, str], ...]
    name: str


def flink_operator_name(graph: JobGraph, op_id: str) -> str:
    """Flink shows sources as `Source: name`, Sink V2 writers as `name: Writer` and legacy sinks as `Sink: name`."""
    op = graph.operator(op_id)
    name = op.display_name
    if op.kind == OperatorKind.source and not name.startswith("Source: "):
        return "Source: " + name
    if op.kind == OperatorKind.sink and op.sink_writer and not name.endswith(": Writer"):
        return name + ": Writer"
    if op.kind == OperatorKind.sink and not op.sink_writer and not name.startswith("Sink: "):
        return "Sink: " + name
    return name


def flink_chain_name(
    graph: JobGraph,
    head: str,
    internal_edges: Iterable[tuple[str, str]],
    chained_sources: Iterable[str] = (),
) -> str:
    """createChainedName: `op -> next`, `op -> (a, b)` where an operator feeds several chained outputs,
    and `head [Source: s]` for sources chained as inputs of the head."""
    internal = set(internal_edges)
    sources = [flink_operator_name(graph, s) for s in chained_sources]
    # Written out with an explicit stack, not recursion: a forward chain of thousands of operators is one
    # chain, and its name nests that deep. Items are operators to name, or literal text between names.
    parts: list[str] = []
    todo: list[tuple[bool, str]] = [(True, head)]
    while todo:
        is_operator, item = todo.pop()
        if not is_operator:
            parts.append(item)
            continue
        base = flink_operator_name(graph, item)
        if item == head and sources:
            base += " [" + ", ".join(sources) + "]"
        parts.append(base)
        # Successors in insertion order, i.e. spec order: Flink's out-edge creation order.
        outs = [child for child in graph.successors(item) if (item, child) in internal]
        if len(outs) == 1:
            todo += [(True, outs[0]), (False, " -> ")]
        elif outs:
            sequence: list[tuple[bool, str]] = [(False, " -> (")]
            for i, child in enumerate(outs):
                if i:
                    sequence.append((False, ", "))
                sequence.append((True, child))
            sequence.append((False, ")"))
            todo += reversed(sequence)
    return "".join(parts)


def internal_edges(graph: JobGraph, members: Iterable[str]) -> list[tuple[str, str]]:
    """Edges with both ends among `members`, in spec order per operator."""
    ordered = list(members)
    member_set = set(ordered)
    return [(u, v) for u in ordered for v in graph.successors(u) if v in member_set]


def flink_chains(
    graph: JobGraph, options: FlinkOptions = FlinkOptions(), roles: Roles | None = None
) -> list[FlinkChain]:
    """The job vertices Flink builds for this graph, in topological order of their heads."""
    order = {op_id: i for i, op_id in enumerate(graph.topological_order)}
    chained_into: dict[str, str] = {}  # chained source -> the head it feeds
    for source in graph.sources:
        if not source_chain_failures(graph, source, options, roles):
            chained_into[source] = graph.out_edges(source)[0].dst
    parent: dict[str, str] = {}
    for edge in graph.spec.edges:
        if edge.src not in chained_into and is_chainable(graph, edge, options, roles):
            parent[edge.dst] = edge.src
    head_of: dict[str, str] = {}

    def find_head(op_id: str) -> str:
        if op_id in chained_into:
            return find_head(chained_into[op_id])
        seen = op_id
        while seen in parent:
            seen = parent[seen]
        return seen

    for op_id in graph.topological_order:
        head_of[op_id] = find_head(op_id)
    groups: dict[str, list[str]] = {}
    for op_id in graph.topological_order:
        groups.setdefault(head_of[op_id], []).append(op_id)
    chains = []
    for head, members in sorted(groups.items(), key=lambda item: order[item[0]]):
        sources = tuple(m for m in members if chained_into.get(m) == head)
        internal = tuple(internal_edges(graph, members))
        tree_edges = [e for e in internal if e[0] not in sources]
        chains.append(
            FlinkChain(
                head=head,
                members=tuple(members),
                chained_sources=sources,
                internal_edges=internal,
                name=flink_chain_name(graph, head, tree_edges, sources),
            )
        )
    return chains
