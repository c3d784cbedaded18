"""The oracle: the minimal parallelism per operator whose modelled capacity meets the demand at a target rate.

It is the physical limit every tuner is scored against (it knows the model; tuners only see metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamtune_cli.capacity import capacity_rps, demand_rps, peak_parallelism
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec, Partitioning

__all__ = ["OracleResult", "oracle_parallelism", "CAPACITY_TOLERANCE"]

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


def _fits(capacity: float, demand: float) -> bool:
    return capacity >= demand * (1 - CAPACITY_TOLERANCE)


def oracle_parallelism(spec: JobSpec, rate_rps: float | None = None, *, max_parallelism: int | None = None) -> OracleResult:
    """Smallest p per operator (scanning up from 1) with capacity_rps(p) >= demand at `rate_rps`.

    The target defaults to the workload's base rate (schedule factor 1). The upper bound is
    `max_parallelism` when given, else each operator's own max_parallelism. An operator that cannot meet
    its demand within the bound gets the parallelism of its peak capacity and makes the result infeasible.
    Demand is computed from the chosen upstream parallelism, so broadcast inputs (which deliver every record
    to each instance) are accounted for.
    """
    rate = spec.workload.rate_rps if rate_rps is None else float(rate_rps)
    if rate <= 0:
        raise ValueError(f"rate_rps must be > 0, got {rate}")
    graph = JobGraph(spec)
    source_rates = graph.source_rates(rate)
    chosen = {op.id: 1 for op in spec.operators}
    demand: dict[str, float] = {}
    infeasible: list[str] = []
    notes: list[str] = []
    for op_id in graph.topological_order:
        cap_p = max_parallelism if max_parallelism is not None else graph.operator(op_id).max_parallelism
        has_broadcast_input = any(e.partitioning == Partitioning.broadcast for e in graph.in_edges(op_id))

        def demand_at(p: int) -> float:
            return demand_rps(graph, source_rates, {**chosen, op_id: p})[op_id]

        fixed_demand = None if has_broadcast_input else demand_at(1)
        found = None
        for p in range(1, cap_p + 1):
            need = fixed_demand if fixed_demand is not None else demand_at(p)
            if _fits(capacity_rps(graph, op_id, p), need):
                found = p
                break
        if found is None:
            found = peak_parallelism(graph, op_id, cap_p)
            infeasible.append(op_id)
            need = fixed_demand if fixed_demand is not None else demand_at(found)
            notes.append(
                f"{op_id} needs {need:,.0f} rec/s but peaks at {capacity_rps(graph, op_id, found):,.0f} rec/s "
                f"(p={found}, max parallelism {cap_p})"
            )
        chosen[op_id] = found
        demand[op_id] = fixed_demand if fixed_demand is not None else demand_at(found)
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
