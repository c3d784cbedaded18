"""Small job builders for tuner and executor tests (hand-computable chains); used by the conformance suite."""

from __future__ import annotations

from typing import Any

from streamtune_cli.spec.models import JobSpec, Scaling

__all__ = ["chain_spec", "linear_scaling"]


def chain_spec(
    stages: list[tuple[str, str, float, float]],
    *,
    rate_rps: float,
    name: str = "chain",
    sigma: float | None = 0.0,
    kappa: float | None = 0.0,
    parallelism: int = 1,
    max_parallelism: int = 128,
    restart_s: float = 10.0,
    partitioning: str = "forward",
    schedule: dict[str, Any] | None = None,
) -> JobSpec:
    """A straight chain from (id, kind, cost_us, selectivity) stages; the first must be a source, the last a sink.

    sigma/kappa set every operator's USL parameters (0, 0 = linear scaling; None = the kind's default).
    """
    operators = []
    for op_id, kind, cost_us, selectivity in stages:
        op: dict[str, Any] = {
            "id": op_id,
            "kind": kind,
            "cost_us": cost_us,
            "parallelism": parallelism,
            "max_parallelism": max_parallelism,
        }
        if kind != "sink":
            op["selectivity"] = selectivity
        scaling = {k: v for k, v in (("sigma", sigma), ("kappa", kappa)) if v is not None}
        if scaling:
            op["scaling"] = scaling
        operators.append(op)
    edges = [
        {"from": a[0], "to": b[0], "partitioning": partitioning} for a, b in zip(stages, stages[1:])
    ]
    workload: dict[str, Any] = {"rate_rps": rate_rps}
    if schedule is not None:
        workload["schedule"] = schedule
    return JobSpec.model_validate(
        {"name": name, "restart_s": restart_s, "workload": workload, "operators": operators, "edges": edges}
    )


def linear_scaling(spec: JobSpec) -> JobSpec:
    """The same job with sigma = kappa = 0 everywhere and no key skew: capacity = p x 1e6 / cost_us."""
    ops = [op.model_copy(update={"scaling": Scaling(sigma=0.0, kappa=0.0), "key_skew": None}) for op in spec.operators]
    return spec.model_copy(update={"operators": ops})
