"""Fusion analysis: which operators to chain (Flink's rules, or ours with semantic fusion and a cost model),
why each boundary is or is not fused, what it saves, the fused job spec, and the joint plan (chains and
parallelism decided together at the rate the job must sustain)."""

from streamtune_cli.fusion.cost_model import CostModel, PlanEstimate, StageCost, StageEstimate, estimate_plan
from streamtune_cli.fusion.flink_rules import (
    FLINK_RULES,
    FlinkChain,
    FlinkOptions,
    RuleFailure,
    chain_failures,
    flink_chain_name,
    flink_chains,
    flink_operator_name,
    is_chainable,
    source_chain_failures,
)
from streamtune_cli.fusion.emit import joint_spec
from streamtune_cli.fusion.plan import (
    COMPARED_PLANS,
    REPORT_SCHEMA,
    Boundary,
    FusionPlan,
    JointEdge,
    JointPlan,
    JointStage,
    Proposal,
    Savings,
    Stage,
)
from streamtune_cli.fusion.planner import MODES, peak_rate_factor, plan_fusion, plan_joint
from streamtune_cli.fusion.sql_rewrite import compose_stateless, substitute_columns

__all__ = [
    "MODES",
    "COMPARED_PLANS",
    "FLINK_RULES",
    "REPORT_SCHEMA",
    "Boundary",
    "CostModel",
    "FlinkChain",
    "FlinkOptions",
    "FusionPlan",
    "JointEdge",
    "JointPlan",
    "JointStage",
    "PlanEstimate",
    "Proposal",
    "RuleFailure",
    "Savings",
    "Stage",
    "StageCost",
    "StageEstimate",
    "chain_failures",
    "compose_stateless",
    "estimate_plan",
    "flink_chain_name",
    "flink_chains",
    "flink_operator_name",
    "is_chainable",
    "joint_spec",
    "peak_rate_factor",
    "plan_fusion",
    "plan_joint",
    "source_chain_failures",
    "substitute_columns",
]
