"""The one definition of each judgement every layer shares: keeping up, the schedule's peak, and bottlenecks.

The sim, the tuning loop, history labels, reports and the bench all import these, so "the job kept up" or
"this operator was the bottleneck" means the same thing in a trace, a label, a report and a bench table.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol

__all__ = [
    "BUSY_THRESHOLD",
    "BACKPRESSURE_THRESHOLD",
    "RATE_TOLERANCE",
    "keeps_up",
    "measured_drain_s",
    "peak_target_rate_rps",
    "bottleneck_set",
    "bottleneck_labels",
]

# Flink marks a vertex backpressured above 10% and the autoscaler treats high busy time as saturation; 0.9
# busy means that measurement noise of a few percent on a fully used operator still reads as saturated.
BUSY_THRESHOLD = 0.9
BACKPRESSURE_THRESHOLD = 0.1
# Float round-off only: a window keeps up when the sources ingest the whole target, not 98% of it.
RATE_TOLERANCE = 1e-9


def keeps_up(achieved_rate_rps: float, target_rate_rps: float) -> bool:
    """The sources ingested at least the whole target (strict: no percentage allowance)."""
    return achieved_rate_rps >= target_rate_rps * (1.0 - RATE_TOLERANCE)


def measured_drain_s(lag_records: float, achieved_rate_rps: float, target_rate_rps: float) -> float | None:
    """Seconds until a window's lag is gone at the rate it was being drained: 0 without lag, None when the
    window drained nothing (sources at or below the target), else lag / (achieved - target).

    Sources reading backlog ingest above the target; the excess is the drain rate, as a real cluster's
    source metrics show it (records read vs records offered).
    """
    if lag_records <= 0:
        return 0.0
    spare = achieved_rate_rps - target_rate_rps
    if spare <= target_rate_rps * RATE_TOLERANCE:
        return None
    return lag_records / spare


def peak_target_rate_rps(base_rate_rps: float, schedule: object, spec_dir: object = None) -> float:
    """The highest total target source rate of a workload: base rate x the schedule's peak factor.

    Tuning converges, the oracle sizes and the bench scores at this rate; a trace schedule's file is read
    relative to spec_dir, as the sim reads it.
    """
    from streamtune_cli.executors.schedules import schedule_peak_factor

    return float(base_rate_rps) * schedule_peak_factor(schedule, spec_dir)  # type: ignore[arg-type]


class _Graph(Protocol):
    def predecessors(self, node: str) -> Iterable[str]: ...
    def successors(self, node: str) -> Iterable[str]: ...
    def __contains__(self, node: object) -> bool: ...


def bottleneck_set(dag: _Graph, saturated: set[str], backpressured: set[str]) -> set[str]:
    """Bottlenecks among `saturated` operators, given which operators are `backpressured`.

    A saturated operator is a bottleneck if (1) one of its direct upstream operators is backpressured, or
    (2) no operator reachable downstream of it is saturated (the most downstream saturated operator on its
    paths: this covers sources, and an operator running exactly at capacity). An operator unknown to the
    DAG has no known neighbours: only rule 2 applies, and it is its own only path.
    """
    result: set[str] = set()
    downstream_saturated: dict[str, bool] = {}

    def reaches_saturated(op: str) -> bool:
        # Iterative depth-first search with memo: long chains must not hit the recursion limit.
        if op in downstream_saturated:
            return downstream_saturated[op]
        stack, seen, order = [op], {op}, []
        while stack:
            node = stack.pop()
            order.append(node)
            for nxt in dag.successors(node):
                if nxt not in seen and nxt not in downstream_saturated:
                    seen.add(nxt)
                    stack.append(nxt)
        for node in reversed(order):
            downstream_saturated[node] = any(
                d in saturated or downstream_saturated.get(d, False) for d in dag.successors(node)
            )
        return downstream_saturated[op]

    for op in saturated:
        if op not in dag:
            result.add(op)
            continue
        upstream_blocked = any(u in backpressured for u in dag.predecessors(op))
        if upstream_blocked or not reaches_saturated(op):
            result.add(op)
    return result


class _Metrics(Protocol):
    busy_max: float
    backpressured_max: float


def bottleneck_labels(
    dag: _Graph,
    metrics: Mapping[str, _Metrics],
    *,
    busy_threshold: float = BUSY_THRESHOLD,
    backpressure_threshold: float = BACKPRESSURE_THRESHOLD,
) -> dict[str, bool]:
    """Which operators are bottlenecks in one measured window (the label models learn to predict).

    Saturated: the busiest instance is busy >= `busy_threshold` (the hottest instance limits a skewed
    operator, as in Flink's autoscaler, which uses the max busy time). Backpressured: the most blocked
    instance is blocked >= `backpressure_threshold` of the time (Flink's "not OK" level). Then
    bottleneck_set's two rules decide.
    """
    saturated = {op for op, m in metrics.items() if m.busy_max >= busy_threshold}
    backpressured = {op for op, m in metrics.items() if m.backpressured_max >= backpressure_threshold}
    found = bottleneck_set(dag, saturated, backpressured)
    return {op: op in found for op in metrics}
