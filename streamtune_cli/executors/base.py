"""The Executor protocol and the measurement model every executor reports in (Observation, Trace)."""

from __future__ import annotations

from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamtune_cli.spec.models import MAX_PARALLELISM_BOUND, JobSpec

__all__ = ["OperatorMetrics", "Observation", "Decision", "TraceStep", "Trace", "Executor", "Parallelism", "FRACTION_SLACK"]

Parallelism = dict[str, int]

# A measured fraction of wall time may overshoot [0, 1] by float rounding in a measuring executor, not by
# more: an executor whose noise can push it further must clamp (the sim does).
FRACTION_SLACK = 1e-6

# Measured amounts: finite (allow_inf_nan=False on the models) and never negative.
_Amount = Annotated[float, Field(ge=0)]
_Fraction = Annotated[float, Field(ge=-FRACTION_SLACK, le=1 + FRACTION_SLACK)]
_Instances = Annotated[int, Field(ge=1, le=MAX_PARALLELISM_BOUND)]


class _Model(BaseModel):
    # inf and NaN are never a measurement: a metric that cannot be computed is left out, not made infinite.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OperatorMetrics(_Model):
    """One operator over one measurement window; fractions are of wall time, 0..1."""

    operator: str
    parallelism: _Instances
    input_rate_rps: _Amount = Field(description="records/s processed (all instances together)")
    output_rate_rps: _Amount = Field(description="records/s emitted downstream")
    busy: _Fraction = Field(description="mean busy fraction over instances")
    busy_max: _Fraction = Field(description="busy fraction of the busiest instance")
    idle: _Fraction = Field(description="mean idle fraction over instances")
    backpressured: _Fraction = Field(description="mean fraction of time blocked on a full output queue")
    backpressured_max: _Fraction
    true_processing_rate_rps: _Amount = Field(
        description="records/s the operator could process if never idle or blocked: input / busy (DS2)"
    )
    true_output_rate_rps: _Amount = Field(description="output / busy (DS2)")


class Observation(_Model):
    """One measurement window of a deployed job, the same shape from every executor."""

    t_s: _Amount = Field(description="end of the window, seconds since the first deployment")
    window_s: Annotated[float, Field(gt=0)]
    target_rate_rps: _Amount = Field(description="what the sources are asked to ingest (all sources together)")
    achieved_rate_rps: _Amount = Field(description="what the sources did ingest (above the target while reading backlog)")
    lag_records: _Amount = Field(description="records waiting at the sources at the end of the window")
    latency_ms: _Amount | None = None
    cpu_cores: _Amount | None = Field(
        None,
        description="cores the job's processes used on average over the window (CPU seconds per second), where "
        "the executor can tell: the local executor's processes, a Flink cluster's task managers",
    )
    machine_cores: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="CPU cores the job's processes could run on, where the executor can tell: the local "
        "executor's CPUs, the cores of a Flink cluster's task manager hosts",
    )
    operators: dict[str, OperatorMetrics] = Field(min_length=1)

    @model_validator(mode="after")
    def _keys_name_their_operator(self) -> "Observation":
        for key, metrics in self.operators.items():
            if metrics.operator != key:
                raise ValueError(f"operators[{key!r}] holds the metrics of operator {metrics.operator!r}")
        return self

    @property
    def keeps_up(self) -> bool:
        """The sources ingested the whole target in this window (definitions.keeps_up: strict)."""
        from streamtune_cli.definitions import keeps_up

        return keeps_up(self.achieved_rate_rps, self.target_rate_rps)

    @property
    def backpressured(self) -> bool:
        """The job did not keep up in this window (sources throttled below the target)."""
        return not self.keeps_up


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

    def peak_target_rate_rps(self, job: JobSpec) -> float:
        """The highest total target source rate the job will be asked for: base rate x schedule peak.

        The tuning loop judges convergence and scores the oracle at this rate, not at one window's."""

    def observe(self) -> Observation:
        """Measure one window (after any warm-up the executor needs)."""

    def close(self) -> None:
        """Release everything the executor started."""
