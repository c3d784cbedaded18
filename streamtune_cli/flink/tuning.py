"""Tuning a Flink job: the spec tuners see (one operator per job vertex) and the result in Flink's terms."""

from __future__ import annotations

from typing import Any

from streamtune_cli.spec.models import JobSpec

__all__ = ["vertex_spec", "flink_terms"]


def vertex_spec(spec: JobSpec, executor: Any, *, probe: bool = True, notes: list[str] | None = None) -> JobSpec:
    """`spec` with Flink's chains fused (`fuse --mode flink`): one operator per job vertex, named like it,
    at the parallelism the job runs now, so the first deployment changes nothing on the cluster.

    Caps that come from the cluster are written into the operators' max_parallelism, which tuners see:
    no vertex above the task slots the job can get, and (with `probe`) a vertex headed by a source whose
    busy time Flink does not measure (a legacy SourceFunction) held at most where it is, since nothing
    tells whether it is saturated. `notes` collects one line per cap.
    """
    from streamtune_cli.fusion.planner import plan_fusion

    fused = plan_fusion(spec, mode="flink").fused_spec
    current = executor.current_parallelism(fused)
    fused = fused.with_parallelism(current)
    budget = executor.slot_budget()
    held = set(executor.unmeasured_sources(fused)) if probe else set()
    operators = []
    for op in fused.operators:
        cap = min(op.max_parallelism, max(budget, op.parallelism))
        if op.id in held:
            cap = min(cap, op.parallelism)
        if cap < op.max_parallelism and notes is not None:
            why = "its source reports no busy time (legacy SourceFunction)" if op.id in held else f"{budget} task slots"
            notes.append(f"{op.display_name}: at most {cap} ({why})")
        operators.append(op.model_copy(update={"max_parallelism": cap}) if cap != op.max_parallelism else op)
    return fused.model_copy(update={"operators": operators})


def flink_terms(executor: Any, spec: JobSpec, parallelism: dict[str, int]) -> dict[str, Any]:
    """The tuned parallelism as Flink takes it: `pipeline.jobvertex-parallelism-overrides` (vertex id:p,
    for a resubmission) and the body of `PUT /jobs/{id}/resource-requirements` (for the running job)."""
    per_vertex = executor.vertex_parallelism(spec, parallelism)
    overrides = ",".join(f"{vertex}:{p}" for vertex, p in per_vertex.items())
    body = {vertex: {"parallelism": {"lowerBound": 1, "upperBound": p}} for vertex, p in per_vertex.items()}
    return {"pipeline.jobvertex-parallelism-overrides": overrides, "resource-requirements": body}
