"""The oracle: the minimal parallelism per operator whose modelled capacity meets the demand at a target rate.

It is the physical limit every tuner is scored against (it knows the model; tuners only see metrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from streamtune_cli.capacity import capacity_rps, hottest_key_share, is_skewed, usl_rate
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec, OperatorKind, Partitioning
from streamtune_cli.tuning.parallelism import cap_of

__all__ = ["OracleResult", "oracle_parallelism", "oracle_data", "minimal_parallelism", "CAPACITY_TOLERANCE"]

# Relative slack when comparing capacity with demand, so float round-off never costs an instance.
CAPACITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class OracleResult:
    parallelism: dict[str, int]
    feasible: bool
    total: int
    reason: str
    infeasible_operators: list[str] = field(default_factory=list)
    rate_rps: float = 0.0
    demand_rps: dict[str, float] = field(default_factory=dict)


def oracle_data(oracle: OracleResult) -> dict[str, Any]:
    """The oracle as plain data for JSON outputs (trace metadata, `simulate --json`)."""
    return {
        "parallelism": dict(oracle.parallelism),
        "total": oracle.total,
        "feasible": oracle.feasible,
        "rate_rps": oracle.rate_rps,
        "reason": oracle.reason,
    }


def _first_max(f: Callable[[int], float], low: int, high: int) -> int:
    """The smallest p in [low, high] maximizing f, for f that rises to its peak and then falls
    (quasi-concave) on the integers: ternary search, O(log(high - low)) evaluations."""
    while high - low > 2:
        third = (high - low) // 3
        m1, m2 = low + third, high - third
        if f(m1) < f(m2):
            low = m1 + 1
        else:
            high = m2
    best = low
    for p in range(low + 1, high + 1):
        if f(p) > f(best):
            best = p
    return best


def _first_fit(fits: Callable[[int], bool], low: int, high: int) -> int | None:
    """The smallest p in [low, high] with fits(p), for `fits` monotone (False ... False True ... True)."""
    if not fits(high):
        return None
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low


def minimal_parallelism(graph: JobGraph, op_id: str, cap_p: int, fixed_rps: float, per_instance_rps: float) -> tuple[int | None, int]:
    """(smallest p <= cap_p whose capacity meets fixed + per_instance x p, or None; p of peak capacity).

    Without key skew, capacity is the USL curve: it rises to one peak and then falls, and it is concave
    before its peak. Demand is linear in p (a broadcast input sends every record to each instance), so
    capacity - demand also rises to one peak and then falls: find that peak (ternary search), then bisect
    its rising side for the first fit. Same answer as scanning p = 1, 2, ... in O(log cap_p) evaluations.

    With key skew the hottest instance's share jumps with p (hashing), so capacity is not monotone. It is
    scanned from the first p whose USL rate fits (capacity never exceeds it), and only while the bound
    capacity <= usl(p) / (p x hottest key share), which never rises with p, can still meet the demand.
    """
    op = graph.operator(op_id)

    def need(p: int) -> float:
        return (fixed_rps + per_instance_rps * p) * (1 - CAPACITY_TOLERANCE)

    def first_fit_of(rate: Callable[[int], float]) -> tuple[int | None, int]:
        top = _first_max(lambda p: rate(p) - need(p), 1, cap_p)
        return _first_fit(lambda p: rate(p) >= need(p), 1, top), top

    if not is_skewed(graph, op_id):
        found, _ = first_fit_of(lambda p: capacity_rps(graph, op_id, p))
        if found is not None:
            return found, found
        return None, _first_max(lambda p: capacity_rps(graph, op_id, p), 1, cap_p)

    skew = op.key_skew
    assert skew is not None
    hottest = hottest_key_share(skew.zipf_s, skew.keys)

    def key_bound(p: int) -> float:
        return usl_rate(op, p) / p / hottest

    start, usl_top = first_fit_of(lambda p: usl_rate(op, p))
    if start is not None:
        for p in range(start, cap_p + 1):
            usl_fits = usl_rate(op, p) >= need(p)
            if key_bound(p) < need(p) or (p > usl_top and not usl_fits):
                break  # neither bound comes back above the demand at a larger p
            if usl_fits and capacity_rps(graph, op_id, p) >= need(p):
                return p, p
    best_p, best = 1, capacity_rps(graph, op_id, 1)
    for p in range(2, cap_p + 1):
        if key_bound(p) <= best:
            break  # no larger p can beat the best so far
        if usl_rate(op, p) > best:
            capacity = capacity_rps(graph, op_id, p)
            if capacity > best:
                best_p, best = p, capacity
    return None, best_p


def oracle_parallelism(spec: JobSpec, rate_rps: float | None = None, *, max_parallelism: int | None = None) -> OracleResult:
    """Smallest p per operator with capacity_rps(p) >= demand at `rate_rps` (see minimal_parallelism for how it is found).

    The target defaults to the workload's base rate (schedule factor 1). The upper bound is each operator's
    own max_parallelism, lowered to `max_parallelism` when that is given. An operator that cannot meet its
    demand within the bound gets the parallelism of its peak capacity and makes the result infeasible.
    Demand is computed from the chosen upstream parallelism, so broadcast inputs (which deliver every record
    to each instance) are accounted for.
    """
    rate = spec.workload.rate_rps if rate_rps is None else float(rate_rps)
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate_rps must be a finite number > 0, got {rate}")
    graph = JobGraph(spec)
    source_rates = graph.source_rates(rate)
    chosen: dict[str, int] = {}
    demand: dict[str, float] = {}
    infeasible: list[str] = []
    notes: list[str] = []
    for op_id in graph.topological_order:
        op = graph.operator(op_id)
        cap_p = cap_of(op, max_parallelism)
        # Demand is fixed + per_instance x p: a broadcast input counts once per instance of this operator.
        fixed_rps = per_instance_rps = 0.0
        if op.kind == OperatorKind.source:
            fixed_rps = source_rates[op_id]
        for up in graph.upstream(op_id):
            sent = demand[up] * graph.operator(up).selectivity
            if graph.edge(up, op_id).partitioning == Partitioning.broadcast:
                per_instance_rps += sent
            else:
                fixed_rps += sent
        found, peak = minimal_parallelism(graph, op_id, cap_p, fixed_rps, per_instance_rps)
        if found is None:
            found = peak
            infeasible.append(op_id)
            need = fixed_rps + per_instance_rps * found
            notes.append(
                f"{op_id} needs {need:,.0f} rec/s but peaks at {capacity_rps(graph, op_id, found):,.0f} rec/s "
                f"(p={found}, max parallelism {cap_p})"
            )
        chosen[op_id] = found
        demand[op_id] = fixed_rps + per_instance_rps * found
    total = sum(chosen.values())
    if infeasible:
        reason = f"infeasible at {rate:,.0f} rec/s: " + "; ".join(notes)
    else:
        reason = f"minimal parallelism meeting {rate:,.0f} rec/s: {total} instances in total"
    return OracleResult(
        parallelism={op.id: chosen[op.id] for op in spec.operators},
        feasible=not infeasible,
        total=total,
        reason=reason,
        infeasible_operators=infeasible,
        rate_rps=rate,
        demand_rps={op.id: demand[op.id] for op in spec.operators},
    )
