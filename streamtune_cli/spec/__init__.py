"""Job specs: the YAML format, its validation with positions, and the graph view of a job."""

from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.loader import dump_spec, load_spec, load_spec_text, spec_to_data
from streamtune_cli.spec.models import (
    ChainingStrategy,
    Edge,
    ExchangeMode,
    JobSpec,
    Operator,
    OperatorKind,
    Partitioning,
    Workload,
)

__all__ = [
    "ChainingStrategy",
    "Edge",
    "ExchangeMode",
    "JobGraph",
    "JobSpec",
    "Operator",
    "OperatorKind",
    "Partitioning",
    "Workload",
    "dump_spec",
    "load_spec",
    "load_spec_text",
    "spec_to_data",
]
