"""Job spec data model (pydantic): operators, edges and workload, with field-level rules declared as data."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "OperatorKind",
    "ChainingStrategy",
    "Partitioning",
    "ExchangeMode",
    "Scaling",
    "KeySkew",
    "Window",
    "JoinSpec",
    "Operator",
    "Edge",
    "ConstantSchedule",
    "StepSchedule",
    "SquareSchedule",
    "SineSchedule",
    "TraceSchedule",
    "Schedule",
    "Workload",
    "JobSpec",
    "DEFAULT_RECORD_BYTES",
    "NEXMARK_EVENT_MIX",
    "NEXMARK_EVENT_BYTES",
    "MAX_PARALLELISM_BOUND",
    "MAX_SKEW_KEYS",
    "MIN_RATE_RPS",
    "MAX_RATE_RPS",
    "MIN_COST_US",
    "MAX_COST_US",
    "MAX_SELECTIVITY",
    "MAX_RECORD_BYTES",
    "MAX_RESTART_S",
    "MIN_RATE_FACTOR",
    "MAX_RATE_FACTOR",
    "MIN_SECONDS",
    "MAX_SECONDS",
    "MIN_RATE_SHARE",
    "MAX_RATE_SHARE",
    "MAX_OPERATORS",
    "MAX_EDGES",
    "MAX_OPERATOR_INPUT_RPS",
]

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"

# Flink's largest allowed max parallelism (KeyGroupRangeAssignment.UPPER_BOUND_MAX_PARALLELISM = 2^15).
MAX_PARALLELISM_BOUND = 32768
# Zipf over more keys than this is indistinguishable from it for skew modelling, and costs memory.
MAX_SKEW_KEYS = 1_000_000

# Every number is bounded where it enters, to a range that makes physical sense (docs/spec.md, "Numeric
# bounds"). Within them every product the sim, the oracle, fusion's cost model and the tuners form (rate x
# factor x selectivities x seconds of backlog, bytes x records/s) stays far inside the float range.
# Total target rate: a millionth of a record per second up to ten billion, above any single job.
MIN_RATE_RPS = 1e-6
MAX_RATE_RPS = 1e10
# CPU per record of one instance: from a nanosecond to a thousand seconds.
MIN_COST_US = 1e-3
MAX_COST_US = 1e9
# Output records per input record: a flat_map that explodes each record into 10,000 is the most we model.
MAX_SELECTIVITY = 1e4
# One output record: up to 1 GiB.
MAX_RECORD_BYTES = 2**30
# Downtime of one reconfiguration: up to a day.
MAX_RESTART_S = 86_400.0
# Schedule factors multiply rate_rps: from a thousandth to a thousand times the base rate.
MIN_RATE_FACTOR = 1e-3
MAX_RATE_FACTOR = 1e3
# Durations (window sizes, periods) and points in time (step and trace times): a millisecond to ~32 years.
MIN_SECONDS = 1e-3
MAX_SECONDS = 1e9
# A source's share of the rate (only ratios matter).
MIN_RATE_SHARE = 1e-6
MAX_RATE_SHARE = 1e6
# The largest job loaded: docs/spec.md states the time and memory it takes (benchmarks/bench_spec_size.py).
MAX_OPERATORS = 50_000
MAX_EDGES = 200_000
# Records/s one operator may have to process at the schedule's peak, after selectivities, broadcast edges
# and converging paths multiplied the source rate (a job-level rule, checked by the loader).
MAX_OPERATOR_INPUT_RPS = 1e15

# Nexmark generator facts (Tucker et al.; Beam/Flink Nexmark): event proportions and average sizes.
NEXMARK_EVENT_MIX = {"person": 1, "auction": 3, "bid": 46}
NEXMARK_EVENT_BYTES = {"person": 200, "auction": 500, "bid": 100}


Seconds = Annotated[float, Field(ge=MIN_SECONDS, le=MAX_SECONDS)]
Factor = Annotated[float, Field(ge=MIN_RATE_FACTOR, le=MAX_RATE_FACTOR)]


class _Strict(BaseModel):
    # Unknown fields are errors: a misspelt cost hint must not be silently ignored.
    # inf and NaN are never meaningful rates, costs or factors: YAML's .inf must not slip through.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)


class OperatorKind(StrEnum):
    source = "source"
    map = "map"
    filter = "filter"
    project = "project"
    flat_map = "flat_map"
    window_aggregate = "window_aggregate"
    aggregate = "aggregate"
    join = "join"
    sink = "sink"


class ChainingStrategy(StrEnum):
    """Flink's ChainingStrategy, spelt in lower case."""

    always = "always"
    head = "head"
    never = "never"
    head_with_sources = "head_with_sources"


class Partitioning(StrEnum):
    """Flink's partitioners: forward, hash (keyBy), rebalance (round robin), broadcast, rescale (round robin
    within a local subset of the downstream instances) and global (every record to instance 0)."""

    forward = "forward"
    hash = "hash"
    rebalance = "rebalance"
    broadcast = "broadcast"
    rescale = "rescale"
    global_ = "global"


class ExchangeMode(StrEnum):
    pipelined = "pipelined"
    batch = "batch"


# Average output record size by kind when the spec gives none (bytes). Sources default to the
# Nexmark mixed-event average; projections shrink records, aggregates emit small rows.
DEFAULT_RECORD_BYTES = {
    OperatorKind.source: 126,
    OperatorKind.map: 100,
    OperatorKind.filter: 100,
    OperatorKind.project: 48,
    OperatorKind.flat_map: 64,
    OperatorKind.window_aggregate: 32,
    OperatorKind.aggregate: 32,
    OperatorKind.join: 160,
    OperatorKind.sink: 0,
}


class Scaling(_Strict):
    """Universal Scalability Law parameters; None means the default for the operator's kind."""

    sigma: Annotated[float, Field(ge=0, le=1)] | None = None
    kappa: Annotated[float, Field(ge=0, le=1)] | None = None


class KeySkew(_Strict):
    """Key distribution of the operator's hash-partitioned input: Zipf(zipf_s) over `keys` keys."""

    zipf_s: Annotated[float, Field(ge=0, le=5)] = 1.0
    keys: Annotated[int, Field(ge=1, le=MAX_SKEW_KEYS)] = 10_000


class Window(_Strict):
    type: Literal["tumble", "hop", "session"]
    size_s: Seconds | None = None
    slide_s: Seconds | None = None
    gap_s: Seconds | None = None
    time_field: str = "date_time"

    @model_validator(mode="after")
    def _shape(self) -> "Window":
        if self.type in ("tumble", "hop") and self.size_s is None:
            raise ValueError(f"a {self.type} window needs size_s")
        if self.type == "hop" and self.slide_s is None:
            raise ValueError("a hop window needs slide_s")
        if self.type == "hop" and self.slide_s is not None and self.size_s is not None and self.slide_s > self.size_s:
            raise ValueError("slide_s must not exceed size_s")
        if self.type == "session" and self.gap_s is None:
            raise ValueError("a session window needs gap_s")
        if self.type != "hop" and self.slide_s is not None:
            raise ValueError("slide_s only applies to hop windows")
        if self.type != "session" and self.gap_s is not None:
            raise ValueError("gap_s only applies to session windows")
        if self.type == "session" and self.size_s is not None:
            raise ValueError("size_s does not apply to session windows (use gap_s)")
        return self


class JoinSpec(_Strict):
    """An equi-join of the operator's two inputs, optionally windowed, with an extra SQL condition."""

    left: str
    right: str
    left_key: list[str] = Field(min_length=1)
    right_key: list[str] = Field(min_length=1)
    condition: str | None = None
    window: Window | None = None

    @model_validator(mode="after")
    def _keys(self) -> "JoinSpec":
        if len(self.left_key) != len(self.right_key):
            raise ValueError("left_key and right_key must have the same number of columns")
        if self.left == self.right:
            raise ValueError("left and right must be different inputs")
        return self


class Operator(_Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    kind: OperatorKind
    name: str | None = None
    parallelism: Annotated[int, Field(ge=1, le=MAX_PARALLELISM_BOUND)] = 1
    max_parallelism: Annotated[int, Field(ge=1, le=MAX_PARALLELISM_BOUND)] = 128
    chaining: ChainingStrategy = ChainingStrategy.always
    slot_sharing_group: str = "default"
    # Cost hints: per-record CPU of one instance, output/input ratio, average output record size.
    cost_us: Annotated[float, Field(ge=MIN_COST_US, le=MAX_COST_US)] = 1.0
    selectivity: Annotated[float, Field(ge=0, le=MAX_SELECTIVITY)] = 1.0
    record_bytes: Annotated[int, Field(ge=0, le=MAX_RECORD_BYTES)] | None = None
    scaling: Scaling | None = None
    key_skew: KeySkew | None = None
    # Sources: share of the workload's rate, and what they generate.
    rate_share: Annotated[float, Field(ge=MIN_RATE_SHARE, le=MAX_RATE_SHARE)] | None = None
    generator: Literal["nexmark", "datagen", "parquet"] | None = None
    events: list[Literal["person", "auction", "bid"]] | None = None
    # generator: parquet: the file (relative to the spec's folder) and its event-time column.
    path: Annotated[str, Field(min_length=1)] | None = None
    event_time: str | None = None
    # Flink facts that change chaining and names (docs/fusion.md): a legacy SourceFunction source (Flink
    # 2.3's datagen), a Sink V2 writer (named `name: Writer`), an operator whose factory yields to the
    # mailbox (YieldingOperatorFactory: writers, async I/O), which never chains behind a legacy source.
    legacy_source: bool = False
    sink_writer: bool = False
    yielding: bool = False
    # Semantics for the local engine (Flink SQL expressions, parsed with sqlglot: spec/sql.py; never evaluated as Python).
    predicate: str | None = None
    columns: dict[str, str] | None = None
    key: list[str] | None = None
    window: Window | None = None
    aggregates: dict[str, str] | None = None
    join: JoinSpec | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> "Operator":
        kind = self.kind
        if self.parallelism > self.max_parallelism:
            raise ValueError(f"parallelism {self.parallelism} exceeds max_parallelism {self.max_parallelism}")
        source_only = {
            "rate_share": self.rate_share,
            "generator": self.generator,
            "events": self.events,
            "path": self.path,
            "event_time": self.event_time,
        }
        for name, value in source_only.items():
            if value is not None and kind != OperatorKind.source:
                raise ValueError(f"{name} only applies to sources")
        if self.legacy_source and kind != OperatorKind.source:
            raise ValueError("legacy_source only applies to sources")
        if self.sink_writer and kind != OperatorKind.sink:
            raise ValueError("sink_writer only applies to sinks")
        if self.generator == "parquet" and self.path is None:
            raise ValueError("a parquet source needs a path (the file it reads)")
        if self.generator != "parquet" and (self.path is not None or self.event_time is not None):
            raise ValueError("path and event_time only apply to sources with generator: parquet")
        if self.generator == "parquet" and self.events is not None:
            raise ValueError("events only apply to nexmark sources")
        if self.predicate is not None and kind != OperatorKind.filter:
            raise ValueError("predicate only applies to filter operators")
        if self.window is not None and kind not in (OperatorKind.window_aggregate,):
            raise ValueError("window only applies to window_aggregate operators (joins take join.window)")
        if kind == OperatorKind.window_aggregate and self.window is None:
            raise ValueError("a window_aggregate needs a window")
        if self.join is not None and kind != OperatorKind.join:
            raise ValueError("join only applies to join operators")
        if self.aggregates is not None and kind not in (OperatorKind.window_aggregate, OperatorKind.aggregate):
            raise ValueError("aggregates only apply to aggregate and window_aggregate operators")
        if kind == OperatorKind.sink and self.selectivity not in (0.0, 1.0):
            raise ValueError("a sink emits nothing downstream; leave selectivity unset")
        return self

    @property
    def output_record_bytes(self) -> int:
        if self.record_bytes is not None:
            return self.record_bytes
        if self.kind == OperatorKind.source and self.events:
            total = sum(NEXMARK_EVENT_MIX[e] for e in self.events)
            return round(sum(NEXMARK_EVENT_MIX[e] * NEXMARK_EVENT_BYTES[e] for e in self.events) / total)
        return DEFAULT_RECORD_BYTES[self.kind]

    @property
    def yields(self) -> bool:
        """Flink's YieldingOperatorFactory: a Sink V2 writer or an operator marked `yielding`."""
        return self.yielding or self.sink_writer

    @property
    def display_name(self) -> str:
        return self.name or self.id


class Edge(_Strict):
    src: str = Field(alias="from")
    dst: str = Field(alias="to")
    partitioning: Partitioning = Partitioning.forward
    key: list[str] | None = None
    exchange: ExchangeMode = ExchangeMode.pipelined

    @model_validator(mode="after")
    def _key(self) -> "Edge":
        if self.partitioning == Partitioning.hash and not self.key:
            raise ValueError("a hash edge needs a key (the columns it partitions by)")
        if self.partitioning != Partitioning.hash and self.key:
            raise ValueError(f"key only applies to hash edges, not {self.partitioning.value}")
        return self


class ConstantSchedule(_Strict):
    kind: Literal["constant"] = "constant"

    def factor_at(self, t_s: float) -> float:
        return 1.0

    def peak_factor(self) -> float:
        return 1.0


class RateStep(_Strict):
    at_s: Annotated[float, Field(ge=0, le=MAX_SECONDS)]
    factor: Factor


class StepSchedule(_Strict):
    kind: Literal["step"]
    steps: list[RateStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _sorted(self) -> "StepSchedule":
        times = [s.at_s for s in self.steps]
        if times != sorted(times):
            raise ValueError("steps must be in increasing at_s order")
        return self

    def factor_at(self, t_s: float) -> float:
        factor = 1.0
        for step in self.steps:
            if t_s >= step.at_s:
                factor = step.factor
        return factor

    def peak_factor(self) -> float:
        # Before the first step the factor is 1, so 1 counts when the first step starts later.
        factors = [step.factor for step in self.steps]
        return max(factors + ([1.0] if self.steps[0].at_s > 0 else []))


class SquareSchedule(_Strict):
    """Nexmark's default rate shape: alternate between a low and a high factor every half period."""

    kind: Literal["square"]
    period_s: Seconds
    low_factor: Factor = 0.5
    high_factor: Factor = 1.0

    def factor_at(self, t_s: float) -> float:
        return self.low_factor if (t_s % self.period_s) < self.period_s / 2 else self.high_factor

    def peak_factor(self) -> float:
        return max(self.low_factor, self.high_factor)


class SineSchedule(_Strict):
    kind: Literal["sine"]
    period_s: Seconds
    amplitude: Annotated[float, Field(ge=0, lt=1)] = 0.5

    def factor_at(self, t_s: float) -> float:
        import math

        return 1.0 + self.amplitude * math.sin(2 * math.pi * t_s / self.period_s)

    def peak_factor(self) -> float:
        return 1.0 + self.amplitude


class TraceSchedule(_Strict):
    """Rate factors read from a CSV file (`t_s,factor` per line), relative to the spec file."""

    kind: Literal["trace"]
    file: Annotated[str, Field(min_length=1, max_length=4096)]


Schedule = Annotated[
    ConstantSchedule | StepSchedule | SquareSchedule | SineSchedule | TraceSchedule,
    Field(discriminator="kind"),
]


class Workload(_Strict):
    rate_rps: Annotated[float, Field(ge=MIN_RATE_RPS, le=MAX_RATE_RPS)]
    schedule: Schedule = ConstantSchedule()


class JobSpec(_Strict):
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    chaining_enabled: bool = True
    restart_s: Annotated[float, Field(ge=0, le=MAX_RESTART_S)] = 10.0
    workload: Workload
    operators: list[Operator] = Field(min_length=1, max_length=MAX_OPERATORS)
    edges: list[Edge] = Field(default_factory=list, max_length=MAX_EDGES)

    def operator(self, op_id: str) -> Operator:
        for op in self.operators:
            if op.id == op_id:
                return op
        raise KeyError(op_id)

    @property
    def parallelism(self) -> dict[str, int]:
        return {op.id: op.parallelism for op in self.operators}

    def with_parallelism(self, parallelism: dict[str, int]) -> "JobSpec":
        """A copy with some operators' parallelism replaced (max_parallelism raised when needed)."""
        ops = []
        for op in self.operators:
            if op.id in parallelism:
                p = int(parallelism[op.id])
                op = op.model_copy(update={"parallelism": p, "max_parallelism": max(op.max_parallelism, p)})
            ops.append(op)
        return self.model_copy(update={"operators": ops})


def sql_fields(op: Operator) -> list[tuple[tuple[str | int, ...], str]]:
    """(path within the operator, SQL text) for every SQL expression an operator carries."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    if op.predicate is not None:
        found.append((("predicate",), op.predicate))
    for name, expr in (op.columns or {}).items():
        found.append((("columns", name), expr))
    for name, expr in (op.aggregates or {}).items():
        found.append((("aggregates", name), expr))
    if op.join is not None and op.join.condition is not None:
        found.append((("join", "condition"), op.join.condition))
    return found


