"""The bottleneck label of an operator in one measurement window: the target the history teaches models to predict."""

from __future__ import annotations

from typing import Mapping, Protocol

import networkx as nx

__all__ = ["BUSY_THRESHOLD", "BACKPRESSURE_THRESHOLD", "bottleneck_labels"]

# Flink marks a vertex backpressured above 10% and the autoscaler treats high busy time as saturation; we use
# 0.9 busy so that measurement noise of a few percent on a fully used operator still reads as saturated.
BUSY_THRESHOLD = 0.9
BACKPRESSURE_THRESHOLD = 0.1


class _Metrics(Protocol):
    busy_max: float
    backpressured_max: float


def bottleneck_labels(
    dag: nx.DiGraph,
    metrics: Mapping[str, _Metrics],
    *,
    busy_threshold: float = BUSY_THRESHOLD,
    backpressure_threshold: float = BACKPRESSURE_THRESHOLD,
) -> dict[str, bool]:
    """Which operators are bottlenecks in one window.

    An operator is *saturated* when its busiest instance is busy >= `busy_threshold` (the hottest instance
    limits a skewed operator, as in Flink's autoscaler, which uses the max busy time). A saturated operator
    is a bottleneck if

    1. one of its direct upstream operators is backpressured (its most backpressured instance blocked
       >= `backpressure_threshold` of the time, Flink's "not OK" level), or
    2. no operator reachable downstream of it is saturated (it is the most downstream saturated operator
       on its paths; this covers sources, which have no upstream, and an operator running exactly at its
       capacity).

    Operators in `metrics` that are not nodes of `dag` have no known neighbours: only rule 2 applies to them,
    and they count as their own only path.
    """
    saturated = {op for op, m in metrics.items() if m.busy_max >= busy_threshold}
    labels: dict[str, bool] = {}
    for op in metrics:
        if op not in saturated:
            labels[op] = False
            continue
        if op not in dag:
            labels[op] = True
            continue
        upstream_backpressured = any(
            u in metrics and metrics[u].backpressured_max >= backpressure_threshold for u in dag.predecessors(op)
        )
        downstream_saturated = any(d in saturated for d in nx.descendants(dag, op))
        labels[op] = upstream_backpressured or not downstream_saturated
    return labels
