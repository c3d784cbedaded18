"""Write a fused plan back as a valid job spec: every linear segment of a stage becomes one operator whose
cost, selectivity, record size, scaling and (where expressible) semantics combine its members'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import MAX_COST_US, MAX_SELECTIVITY, ChainingStrategy, Edge, JobSpec, Operator, OperatorKind
from streamtune_cli.spec.parallelism import retarget_parallelism

from streamtune_cli.fusion.cost_model import StageCost
from streamtune_cli.fusion.sql_rewrite import STATELESS_KINDS, compose_stateless

if TYPE_CHECKING:
    from streamtune_cli.fusion.plan import JointPlan

__all__ = ["FUSED_ID_SEPARATOR", "Combined", "combined_operator", "edge_data", "joint_spec", "linear_segments"]

# Fused operator ids join their members' ids; `__` is legal in ids and rare in hand-written ones.
FUSED_ID_SEPARATOR = "__"


def linear_segments(graph: JobGraph, members: Sequence[str], internal: set[tuple[str, str]]) -> list[list[str]]:
    """Split a stage (members in topological order) into paths a single spec operator can stand for.

    A member continues its predecessor's segment when it is that predecessor's only output and the
    predecessor is its only input. A sink is cut off a segment that starts at a source or a join: a spec
    operator cannot be a source and a sink, nor a join without outputs (the plan still runs them as one task).
    A source is cut off a segment that feeds a `head_with_sources` operator: written as one operator it
    would look like a source to that operator, which Flink only chains behind real sources.
    """
    segment_of: dict[str, list[str]] = {}
    segments: list[list[str]] = []
    for op_id in members:
        ups = graph.upstream(op_id)
        pred = ups[0] if len(ups) == 1 else None
        if pred is not None and (pred, op_id) in internal and len(graph.downstream(pred)) == 1:
            segment = segment_of[pred]
            if not (
                graph.operator(op_id).kind == OperatorKind.sink
                and graph.operator(segment[0]).kind in (OperatorKind.source, OperatorKind.join)
            ):
                segment.append(op_id)
                segment_of[op_id] = segment
                continue
        segment = [op_id]
        segments.append(segment)
        segment_of[op_id] = segment
    cut: list[list[str]] = []
    for segment in segments:
        feeds_head_with_sources = any(
            graph.operator(down).chaining == ChainingStrategy.head_with_sources
            for down in graph.downstream(segment[-1])
        )
        if len(segment) > 1 and graph.operator(segment[0]).kind == OperatorKind.source and feeds_head_with_sources:
            cut += [segment[:1], segment[1:]]
        else:
            cut.append(segment)
    return cut


@dataclass(frozen=True)
class Combined:
    """A segment as one operator, and whether its semantic fields say exactly what the members do."""

    operator: Operator
    exact_semantics: bool


def _has_semantics(op: Operator) -> bool:
    return any(
        value is not None for value in (op.predicate, op.columns, op.key, op.window, op.aggregates, op.join)
    )


def _renamed_join(op: Operator, id_of_input: dict[str, str]) -> dict | None:
    if op.join is None:
        return None
    data = op.join.model_dump(exclude_none=True)
    data["left"] = id_of_input.get(op.join.left, op.join.left)
    data["right"] = id_of_input.get(op.join.right, op.join.right)
    return data


def combined_operator(
    graph: JobGraph,
    segment: Sequence[str],
    cost: StageCost,
    *,
    new_id: str,
    name: str,
    parallelism: int,
    id_of_input: dict[str, str],
) -> Combined:
    """The spec operator standing for `segment` (members in order; `cost` is the segment's StageCost).

    `id_of_input` maps the id of an operator feeding the segment to its id in the new spec (join sides).
    """
    ops = [graph.operator(m) for m in segment]
    if len(ops) == 1:
        op = ops[0]
        if op.join is not None:
            op = op.model_copy(update={"join": type(op.join).model_validate(_renamed_join(op, id_of_input))})
        if op.parallelism != parallelism:
            op = op.model_copy(update={"parallelism": parallelism})
        return Combined(op, True)
    head, tail = ops[0], ops[-1]
    data: dict = {
        "id": new_id,
        "name": name,
        "parallelism": parallelism,
        "max_parallelism": max(parallelism, min(op.max_parallelism for op in ops)),
        "chaining": head.chaining.value,
        "slot_sharing_group": head.slot_sharing_group,
        "cost_us": min(cost.cost_us, MAX_COST_US),
        "scaling": cost.scaling.model_dump(),
    }
    if head.key_skew is not None:
        data["key_skew"] = head.key_skew.model_dump()
    if head.yielding:
        data["yielding"] = True
    if head.kind == OperatorKind.source and head.legacy_source and tail.kind != OperatorKind.sink:
        data["legacy_source"] = True
    exact = True
    if tail.kind == OperatorKind.sink:
        data["kind"] = OperatorKind.sink.value
        exact = not any(_has_semantics(op) for op in ops)
    else:
        data["selectivity"] = min(cost.through, MAX_SELECTIVITY)
        data["record_bytes"] = tail.output_record_bytes
        if head.kind == OperatorKind.source:
            data["kind"] = OperatorKind.source.value
            for field in ("rate_share", "generator", "events", "path", "event_time"):
                if getattr(head, field) is not None:
                    data[field] = getattr(head, field)
            rest = ops[1:]
            composition = compose_stateless(rest)
            if composition is not None and composition.predicate is None:
                if composition.columns is not None:
                    data["columns"] = composition.columns
            else:
                exact = False
        elif all(op.kind in STATELESS_KINDS for op in ops):
            composition = compose_stateless(ops)
            if composition is not None:
                data["kind"] = composition.kind.value
                if composition.predicate is not None:
                    data["predicate"] = composition.predicate
                if composition.columns is not None:
                    data["columns"] = composition.columns
            else:
                exact = False
                if all(op.kind == OperatorKind.filter for op in ops):
                    data["kind"] = OperatorKind.filter.value
                elif any(op.kind == OperatorKind.flat_map for op in ops):
                    data["kind"] = OperatorKind.flat_map.value
                else:
                    data["kind"] = OperatorKind.map.value
        else:
            # A stateful member (join, window, aggregate) gives the operator its kind and state fields;
            # stateless members around it are exact only when they declare nothing.
            stateful = [op for op in ops if op.kind not in STATELESS_KINDS]
            main = stateful[0]
            data["kind"] = main.kind.value
            for field in ("key", "window", "aggregates"):
                value = getattr(main, field)
                if value is not None:
                    data[field] = value.model_dump() if hasattr(value, "model_dump") else value
            join = _renamed_join(main, id_of_input)
            if join is not None:
                data["join"] = join
            exact = len(stateful) == 1 and not any(_has_semantics(op) for op in ops if op is not main)
    if cost.cost_us > MAX_COST_US or cost.through > MAX_SELECTIVITY:
        # Members each within the spec's ranges can add up beyond them (two operators at the cost limit);
        # such a stage is far past anything that runs, so it is written at the limit and marked inexact.
        exact = False
    return Combined(Operator.model_validate(data), exact)


def edge_data(edge: Edge, src: str, dst: str) -> dict:
    data: dict = {"from": src, "to": dst, "partitioning": edge.partitioning.value}
    if edge.key:
        data["key"] = list(edge.key)
    if edge.exchange.value != "pipelined":
        data["exchange"] = edge.exchange.value
    return data


def joint_spec(spec: JobSpec, joint: "JointPlan") -> JobSpec:
    """The job deployed as the joint plan says: every operator at its chain's parallelism, and `chaining:
    head` on the first operator of a chain that Flink would otherwise chain to its upstream (a cut edge
    between equal parallelism). Edges the joint plan cuts between unequal parallelism rebalance, as Flink
    deploys a forward edge whose ends differ."""
    deployed = retarget_parallelism(spec, joint.parallelism)
    starts = {
        edge.dst
        for edge in joint.edges
        if not edge.fused and joint.parallelism[edge.src] == joint.parallelism[edge.dst]
    }
    operators = [
        op.model_copy(update={"chaining": ChainingStrategy.head})
        if op.id in starts and op.chaining == ChainingStrategy.always
        else op
        for op in deployed.operators
    ]
    return deployed.model_copy(update={"operators": operators})
