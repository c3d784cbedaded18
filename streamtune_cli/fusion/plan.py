"""FusionPlan: which operators run fused, why every boundary is or is not fused, what it saves, and the fused
job spec. Plain data with a JSON form; built by streamtune_cli.fusion.planner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamtune_cli.spec.models import JobSpec

from streamtune_cli.fusion.cost_model import CostModel, PlanEstimate, StageEstimate

__all__ = [
    "Savings",
    "Stage",
    "Boundary",
    "Proposal",
    "FusionPlan",
    "JointStage",
    "JointEdge",
    "JointPlan",
    "COMPARED_PLANS",
    "REPORT_SCHEMA",
]

# /2: the joint plan, the plans it is compared with, and the notes (fusion/1 had none of them).
REPORT_SCHEMA = "streamtune.fusion/2"

# The plans a report compares, in the order it shows them, with how it names them.
COMPARED_PLANS: dict[str, str] = {
    "spec": "spec as written (unfused)",
    "given": "this plan, spec's parallelism",
    "flink_given": "Flink chaining, spec's parallelism",
    "oracle": "unfused, oracle's parallelism",
    "flink_oracle": "Flink chaining, oracle's parallelism",
    "joint": "joint plan",
}


@dataclass(frozen=True)
class Savings:
    """Per-second savings at the target rate (negative would mean a cost; the planner never makes one)."""

    cpu_us_per_s: float = 0.0
    serialized_bytes_per_s: float = 0.0
    network_bytes_per_s: float = 0.0
    hops_per_s: float = 0.0
    latency_ms: float = 0.0

    @classmethod
    def between(cls, before: PlanEstimate, after: PlanEstimate) -> "Savings":
        return cls(
            cpu_us_per_s=before.cpu_us_per_s - after.cpu_us_per_s,
            serialized_bytes_per_s=before.serialized_bytes_per_s - after.serialized_bytes_per_s,
            network_bytes_per_s=before.network_bytes_per_s - after.network_bytes_per_s,
            hops_per_s=before.hops_per_s - after.hops_per_s,
            latency_ms=before.latency_ms - after.latency_ms,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "serialized_bytes_per_s": self.serialized_bytes_per_s,
            "network_bytes_per_s": self.network_bytes_per_s,
            "cpu_us_per_s": self.cpu_us_per_s,
            "hops_per_s": self.hops_per_s,
            "latency_ms": self.latency_ms,
        }


@dataclass(frozen=True)
class _Task:
    """What every stage of a plan has: its operators, its parallelism and the cost model's estimate."""

    name: str
    head: str
    members: tuple[str, ...]
    parallelism: int
    estimate: StageEstimate

    @property
    def fused(self) -> bool:
        return len(self.members) > 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "head": self.head,
            "members": list(self.members),
            "parallelism": self.parallelism,
            "input_rps": self.estimate.input_rps,
            "cpu_us_per_s": self.estimate.cpu_us_per_s,
            "capacity_rps": self.estimate.capacity_rps,
            "utilization": self.estimate.utilization,
        }


@dataclass(frozen=True)
class Stage(_Task):
    """One task of the fused job (a Flink job vertex): original operators, and the spec operators for it."""

    spec_operators: tuple[str, ...] = ()  # ids in the fused spec (more than one where the spec cannot say it)
    pushdowns: tuple[str, ...] = ()  # e.g. "filter `f` runs before `m`"
    exact_semantics: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "spec_operators": list(self.spec_operators),
            "pushdowns": list(self.pushdowns),
            "exact_semantics": self.exact_semantics,
        }


@dataclass(frozen=True)
class Boundary:
    """One edge of the original job: fused or an exchange, why, and what fusing it saves (or would save)."""

    src: str
    dst: str
    partitioning: str  # as written in the spec
    key: tuple[str, ...]
    fused: bool
    how: str  # chained | composed | moved | source input | exchange
    reasons: tuple[str, ...]
    savings: Savings
    effective_partitioning: str = ""  # after an exchange moved (differs from `partitioning` then)
    effective_key: tuple[str, ...] = ()
    spec_split: bool = False  # fused in the plan, two operators in the spec

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "from": self.src,
            "to": self.dst,
            "partitioning": self.partitioning,
            "key": list(self.key),
            "fused": self.fused,
            "how": self.how,
            "reasons": list(self.reasons),
            ("savings" if self.fused else "would_save"): self.savings.as_dict(),
        }
        if self.effective_partitioning and (
            self.effective_partitioning != self.partitioning or self.effective_key != self.key
        ):
            data["effective_partitioning"] = self.effective_partitioning
            data["effective_key"] = list(self.effective_key)
        if self.spec_split:
            data["spec_split"] = True
        return data


@dataclass(frozen=True)
class Proposal:
    """Aligning parallelism (and making the edge forward) so that a profitable fusion becomes legal."""

    src: str
    dst: str
    parallelism: int
    changes: tuple[tuple[str, int, int], ...]  # (stage name, old p, new p)
    make_forward: bool
    savings: Savings
    message: str

    @property
    def instance_delta(self) -> int:
        return sum(new - old for _, old, new in self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.src,
            "to": self.dst,
            "parallelism": self.parallelism,
            "changes": [{"stage": name, "from_p": old, "to_p": new} for name, old, new in self.changes],
            "instance_delta": self.instance_delta,
            "make_forward": self.make_forward,
            "would_save": self.savings.as_dict(),
            "message": self.message,
        }


def _estimate_dict(estimate: PlanEstimate) -> dict[str, Any]:
    return {**estimate.as_dict(), "keeps_up": estimate.max_utilization <= 1 + 1e-9}


@dataclass(frozen=True)
class JointStage(_Task):
    """One task of the joint plan: a chain (a legal Flink chain at its parallelism) and its parallelism."""


@dataclass(frozen=True)
class JointEdge:
    """An edge Flink would chain at equal parallelism, and what the joint plan does with it."""

    src: str
    dst: str
    fused: bool
    how: str  # chained | composed | source input | cut
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.src, "to": self.dst, "fused": self.fused, "how": self.how, "reason": self.reason}


@dataclass(frozen=True)
class JointPlan:
    """Chains and parallelism decided together, so that the job keeps up at `rate_rps` with the fewest tasks
    (then the least CPU) the cost model finds; built by streamtune_cli.fusion.planner."""

    rate_rps: float
    stages: tuple[JointStage, ...]
    edges: tuple[JointEdge, ...]  # every chainable edge, fused or cut
    estimate: PlanEstimate
    parallelism: dict[str, int]  # original operator -> parallelism of its chain
    oracle_parallelism: dict[str, int]
    oracle_feasible: bool
    searched: str  # how the chains were chosen: exhaustive, exact (paths) or greedy

    @property
    def keeps_up(self) -> bool:
        return self.estimate.max_utilization <= 1 + 1e-9

    @property
    def chains(self) -> tuple[JointStage, ...]:
        return tuple(stage for stage in self.stages if stage.fused)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate_rps": self.rate_rps,
            "keeps_up": self.keeps_up,
            "tasks": self.estimate.tasks,
            "vertices": self.estimate.vertices,
            "chains": len(self.chains),
            "cpu_us_per_s": self.estimate.cpu_us_per_s,
            "max_utilization": self.estimate.max_utilization,
            "searched": self.searched,
            "parallelism": dict(self.parallelism),
            "stages": [stage.as_dict() for stage in self.stages],
            "edges": [edge.as_dict() for edge in self.edges],
            "oracle": {
                "parallelism": dict(self.oracle_parallelism),
                "total": sum(self.oracle_parallelism.values()),
                "feasible": self.oracle_feasible,
            },
        }


@dataclass(frozen=True)
class FusionPlan:
    """The result of `streamtune fuse`: stages, boundaries, proposals, estimates and the fused spec."""

    spec: JobSpec
    mode: str
    rate_rps: float
    cost_model: CostModel
    stages: tuple[Stage, ...]
    boundaries: tuple[Boundary, ...]
    proposals: tuple[Proposal, ...]
    before: PlanEstimate
    after: PlanEstimate
    fused_spec: JobSpec
    spec_members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # fused-spec id -> original ids
    rounds: int = 1
    joint: JointPlan | None = None
    compared: dict[str, PlanEstimate] = field(default_factory=dict)  # keys of COMPARED_PLANS
    notes: tuple[str, ...] = ()  # what the numbers mean: overload, why less than Flink, the joint plan

    @property
    def savings(self) -> Savings:
        return Savings.between(self.before, self.after)

    @property
    def chains(self) -> tuple[Stage, ...]:
        return tuple(stage for stage in self.stages if stage.fused)

    def stage_of(self, op_id: str) -> Stage:
        for stage in self.stages:
            if op_id in stage.members:
                return stage
        raise KeyError(op_id)

    def summary(self) -> dict[str, Any]:
        """The headline numbers (what a CI gate reads): counts and estimated savings per second."""
        fused_edges = sum(1 for b in self.boundaries if b.fused)
        return {
            "job": self.spec.name,
            "mode": self.mode,
            "rate_rps": self.rate_rps,
            "operators": len(self.spec.operators),
            "chains": len(self.chains),
            "vertices": len(self.stages),
            "fused_edges": fused_edges,
            "boundaries": len(self.boundaries) - fused_edges,
            **self.savings.as_dict(),
            "tasks_saved": self.before.tasks - self.after.tasks,
            "max_utilization": self.after.max_utilization,
            "proposal_count": len(self.proposals),
            "keeps_up_as_written": self.before.max_utilization <= 1 + 1e-9,
            **self._joint_summary(),
        }

    def _joint_summary(self) -> dict[str, Any]:
        if self.joint is None:
            return {}
        flink = self.compared.get("flink_oracle")
        return {
            "joint_keeps_up": self.joint.keeps_up,
            "joint_tasks": self.joint.estimate.tasks,
            "joint_cpu_us_per_s": self.joint.estimate.cpu_us_per_s,
            **({"flink_oracle_tasks": flink.tasks, "flink_oracle_cpu_us_per_s": flink.cpu_us_per_s} if flink else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: the summary at the top level, then every stage, boundary and proposal."""
        return {
            "schema": REPORT_SCHEMA,
            **self.summary(),
            "savings": self.savings.as_dict(),
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "cost_model": self.cost_model.as_dict(),
            "stages": [stage.as_dict() for stage in self.stages],
            "edges": [boundary.as_dict() for boundary in self.boundaries],
            "proposals": [proposal.as_dict() for proposal in self.proposals],
            "fused_spec_operators": {k: list(v) for k, v in self.spec_members.items()},
            "rounds": self.rounds,
            "notes": list(self.notes),
            "compared": {key: _estimate_dict(self.compared[key]) for key in COMPARED_PLANS if key in self.compared},
            "joint": self.joint.as_dict() if self.joint is not None else None,
        }
