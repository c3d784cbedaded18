"""DS2 (Kalavri et al., OSDI 2018): parallelism from true processing rates and propagated target rates."""

from __future__ import annotations

from streamtune_cli.executors.base import Decision, Observation, Parallelism, TraceStep
from streamtune_cli.tuning.view import JobView
from streamtune_cli.tuning.tuners.base import (
    ceil_instances,
    number_option,
    target_input_rates,
)

__all__ = ["DS2Tuner", "ds2_parallelism"]


def ds2_parallelism(
    graph: JobView, parallelism: Parallelism, observation: Observation, *, overprovision: float = 0.0
) -> tuple[dict[str, int], dict[str, str], dict[str, float]]:
    """One DS2 step: (parallelism, reason per operator, target input rate per operator).

    For each operator in topological order: true processing rate per instance = (input / busy) / p;
    p' = ceil(target input x (1 + overprovision) / that rate). Targets propagate downstream as
    upstream target x (true output rate / true processing rate); sources take the external target.
    """
    targets = target_input_rates(graph, parallelism, observation)
    proposed: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for op_id in graph.topological_order:
        p = parallelism[op_id]
        metrics = observation.operators[op_id]
        target = targets[op_id]
        if target <= 0:
            proposed[op_id] = 1
            reasons[op_id] = "no input expected at the target rate: 1 instance"
            continue
        if metrics.true_processing_rate_rps <= 0:
            proposed[op_id] = p
            reasons[op_id] = "no busy time measured, true rate unknown: kept"
            continue
        per_instance = metrics.true_processing_rate_rps / p
        needed = target * (1.0 + overprovision) / per_instance
        proposed[op_id] = ceil_instances(needed)
        reasons[op_id] = (
            f"target input {target:,.0f} rec/s / true rate {per_instance:,.0f} rec/s per instance "
            f"= {needed:.2f} -> {proposed[op_id]}"
        )
    return proposed, reasons, targets


class DS2Tuner:
    """DS2's scaling policy, applied to every operator (sources included) at each step.

    `overprovision` is DS2's `factor` (deliberate extra instances, 0 by default).
    """

    name = "ds2"

    def __init__(self, *, overprovision: float = 0.0):
        self.overprovision = number_option("overprovision", overprovision, low=0.0)

    def propose(
        self, graph: JobView, parallelism: Parallelism, observation: Observation, history: list[TraceStep]
    ) -> Decision:
        proposed, reasons, _ = ds2_parallelism(graph, parallelism, observation, overprovision=self.overprovision)
        changed = [op for op in graph.topological_order if proposed[op] != parallelism[op]]
        converged = not changed and not observation.backpressured
        summary = (
            f"DS2: {len(changed)} operator(s) rescaled for a target of {observation.target_rate_rps:,.0f} rec/s"
            if changed
            else "DS2: every operator already at its estimated optimum"
        )
        return Decision(parallelism=proposed, reasons=reasons, summary=summary, converged=converged)
