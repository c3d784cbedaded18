"""Parallelism maps applied to a spec the way Flink deploys them (forward edges between unequal parallelism rebalance)."""

from __future__ import annotations

from streamtune_cli.errors import UsageError
from streamtune_cli.spec.models import JobSpec, Partitioning

__all__ = ["complete_parallelism", "retarget_parallelism"]


def complete_parallelism(spec: JobSpec, parallelism: dict[str, int] | None) -> dict[str, int]:
    """A full map in spec order: the given values, the spec's own for the rest; unknown ids or p < 1 are errors."""
    given = dict(parallelism or {})
    known = {op.id for op in spec.operators}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(
            f"unknown operator{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)} "
            f"in job {spec.name!r} (operators: {', '.join(op.id for op in spec.operators)})"
        )
    full: dict[str, int] = {}
    for op in spec.operators:
        p = given.get(op.id, op.parallelism)
        if isinstance(p, bool) or int(p) != p or int(p) < 1:
            raise UsageError(f"parallelism of {op.id!r} must be an integer >= 1, got {p!r}")
        full[op.id] = int(p)
    return full


def retarget_parallelism(spec: JobSpec, parallelism: dict[str, int]) -> JobSpec:
    """The spec deployed at `parallelism`: a valid JobSpec.

    A `forward` edge between operators of unequal parallelism becomes `rebalance`, which is what Flink does
    for default partitioning when parallelism differs (StreamGraph: forward is only kept for equal
    parallelism). Edges are rewritten from `spec` as given, so pass the original spec each time: an edge
    converted once turns back into `forward` when the parallelism is equal again.
    """
    full = complete_parallelism(spec, parallelism)
    retargeted = spec.with_parallelism(full)
    edges = []
    changed = False
    for edge in spec.edges:
        if edge.partitioning == Partitioning.forward and full[edge.src] != full[edge.dst]:
            edge = edge.model_copy(update={"partitioning": Partitioning.rebalance})
            changed = True
        edges.append(edge)
    if changed:
        retargeted = retargeted.model_copy(update={"edges": edges})
    return retargeted
