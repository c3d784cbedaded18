"""The Executor protocol and the measurement model every executor reports in (Observation, Trace)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from streamtune_cli.spec.models import JobSpec

__all__ = ["OperatorMetrics", "Observation", "Decision", "TraceStep", "Trace", "Executor", "Parallelism"]

Parallelism = dict[str, int]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorMetrics(_Model):
    """One operator over one measurement window; fractions are of wall time, 0..1."""

    operator: str
    parallelism: int
    input_rate_rps: float = Field(description="records/s processed (all instances together)")
    output_rate_rps: float = Field(description="records/s emitted downstream")
    busy: float = Field(description="mean busy fraction over instances")
    busy_max: float = Field(description="busy fraction of the busiest instance")
    idle: float = Field(description="mean idle fraction over instances")
    backpressured: float = Field(description="mean fraction of time blocked on a full output queue")
    backpressured_max: float
    true_processing_rate_rps: float = Field(
        description="records/s the operator could process if never idle or blocked: input / busy (DS2)"
    )
    true_output_rate_rps: float = Field(description="output / busy (DS2)")


class Observation(_Model):
    """One measurement window of a deployed job, the same shape from every executor."""

    t_s: float = Field(description="end of the window, seconds since the first deployment")
    window_s: float
    target_rate_rps: float = Field(description="what the sources are asked to ingest (all sources together)")
    achieved_rate_rps: float = Field(description="what the sources did ingest")
    lag_records: float = Field(description="records waiting at the sources at the end of the window")
    latency_ms: float | None = None
    operators: dict[str, OperatorMetrics]

    @property
    def backpressured(self) -> bool:
        """The job did not keep up in this window (sources throttled below target)."""
        return self.achieved_rate_rps < 0.98 * self.target_rate_rps


class Decision(_Model):
    """What a tuner proposed after an observation, and why (per operator and overall)."""

    parallelism: Parallelism
    reasons: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    converged: bool = False


class TraceStep(_Model):
    step: int
    parallelism: Parallelism
    observation: Observation
    decision: Decision | None = None


class Trace(_Model):
    """One tuning session: deployed parallelism, what was seen, and what was decided, step by step."""

    format_version: int = 1
    job: str
    spec: dict[str, Any] = Field(description="the job spec as plain data (spec_to_data), so the DAG can be rebuilt")
    executor: str
    tuner: str
    seed: int | None = None
    steps: list[TraceStep] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Executor(Protocol):
    """Runs a job at a given parallelism and measures it; sim, local and flink implement this."""

    name: str

    def deploy(self, job: JobSpec, parallelism: Parallelism) -> None:
        """(Re)start the job at this parallelism; a redeploy costs the executor's restart time."""

    def observe(self) -> Observation:
        """Measure one window (after any warm-up the executor needs)."""

    def close(self) -> None:
        """Release everything the executor started."""
