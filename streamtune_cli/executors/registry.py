"""Executor registry: make_executor(name, **options) builds an executor; its options are declared once, as data.

Options can be validated without building (or even importing) an executor, so a bench suite or a CLI call
with a bad option fails before anything runs.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from streamtune_cli.errors import UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from streamtune_cli.executors.base import Executor

__all__ = [
    "EXECUTOR_NAMES",
    "EXECUTOR_OPTIONS",
    "ExecutorOption",
    "ExecutorOptionError",
    "SimOptions",
    "executor_class",
    "executor_options",
    "make_executor",
    "options_model",
]


@dataclass(frozen=True)
class ExecutorOption:
    """One keyword option of an executor: its type, default, bounds and meaning.

    `type` is int, float, bool or str; every number must also be finite. `optional` admits None (the default).
    """

    name: str
    type: type
    default: Any
    help: str
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    optional: bool = False

    def requirement(self) -> str:
        """What a valid value is, in words: 'must be a finite number between 0 and 0.5'."""
        if self.type is str:
            return "must be a string"
        if self.type is bool:
            return "must be true or false"
        kind = "an integer" if self.type is int else "a finite number"
        if self.gt == 0 and self.ge is None:
            positive = "must be a positive integer" if self.type is int else "must be positive and finite"
            return positive if self.le is None else f"{positive}, at most {self.le:g}"
        if self.ge is not None and self.le is not None:
            return f"must be {kind} between {self.ge:g} and {self.le:g}"
        bounds = [f"{op} {value:g}" for op, value in ((">", self.gt), (">=", self.ge), ("<=", self.le)) if value is not None]
        return " ".join(["must be", kind, " and ".join(bounds)]).strip()


class ExecutorOptionError(UsageError):
    """An executor option that is unknown or has a value the executor cannot use; `option` names it (or is None).

    `detail` is the message without the executor and option names, so a CLI can say it of its own flag.
    """

    def __init__(self, executor: str, option: str | None, detail: str, message: str | None = None):
        super().__init__(message or f"executor {executor!r} option {option!r} {detail}")
        self.executor = executor
        self.option = option
        self.detail = detail


# name -> (module, class, options model). Modules are imported only when their executor is built, so
# validating a `flink` suite never imports an HTTP client, and `sim` never pays for one either.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "sim": ("streamtune_cli.executors.sim", "SimExecutor", "SimOptions"),
    "local": ("streamtune_cli.executors.local.executor", "LocalExecutor", "LocalOptions"),
    "flink": ("streamtune_cli.executors.flink", "FlinkExecutor", "FlinkOptions"),
}

# Known names that have no implementation yet: asking for one says so instead of "unknown".
_PLANNED: tuple[str, ...] = ()

EXECUTOR_NAMES: tuple[str, ...] = tuple(_REGISTRY)

# Options every executor declares the same way.
_RATE_RPS = ExecutorOption(
    "rate_rps",
    float,
    None,
    "Base source rate in records/s that the workload's schedule multiplies (default: the spec's workload rate)",
    gt=0,
    le=1e10,  # spec.models.MAX_RATE_RPS, written out to keep pydantic out of `--help` (a test checks they agree)
    optional=True,
)
_SPEC_DIR = ExecutorOption("spec_dir", str, None, "Folder that trace schedules' relative paths are resolved against", optional=True)

# Each executor's keyword options, in its constructor's order; the bounds are the executor's own.
EXECUTOR_OPTIONS: Mapping[str, tuple[ExecutorOption, ...]] = {
    "sim": (
        ExecutorOption("seed", int, 0, "Seed of the measurement noise (same seed, same observations)", ge=0),
        # Beyond 0.5 the 3-sigma truncated noise factor can reach 0 and a metric vanishes.
        ExecutorOption("noise", float, 0.02, "Relative measurement noise (0 = exact)", ge=0, le=0.5),
        ExecutorOption("window_s", float, 30.0, "Length of one measurement window in seconds", gt=0),
        ExecutorOption("warmup_s", float, 30.0, "Seconds the job runs (simulated) before each window is measured", ge=0),
        _RATE_RPS,
        _SPEC_DIR,
    ),
    "local": (
        ExecutorOption("window_s", float, 10.0, "Length of one measurement window in seconds (wall clock)", gt=0),
        ExecutorOption("warmup_s", float, 5.0, "Seconds the job runs before each window is measured", ge=0),
        _RATE_RPS,
        _SPEC_DIR,
        ExecutorOption("fusion", bool, True, "Run chainable operators fused in one process (false: one process per operator)"),
        ExecutorOption("sink", str, "count", "What sinks do with their records: count, blackhole or parquet"),
        ExecutorOption("sink_dir", str, None, "Folder the parquet sinks write to", optional=True),
        ExecutorOption("seed", int, 0, "Seed of the generated input (same seed, same records)", ge=0),
        ExecutorOption("queue_batches", int, 8, "Capacity of each process's input queue, in batches", ge=1, le=4096),
        ExecutorOption("batch_rows", int, 8192, "Most records a source puts in one batch", ge=1, le=1_000_000),
        ExecutorOption(
            "bounded_events", int, None, "Stop the input after this many Nexmark events (default: unbounded)", ge=1, optional=True
        ),
        ExecutorOption("start_timeout_s", float, 120.0, "Longest wait for the job's processes to start or stop", gt=0),
        ExecutorOption(
            "cores", int, None, "Pin the job's processes to this many CPUs (default: every CPU)", ge=1, le=4096, optional=True
        ),
    ),
    "flink": (
        ExecutorOption("rest", str, None, "REST address of the Flink cluster, e.g. http://127.0.0.1:8081", optional=True),
        ExecutorOption("job", str, None, "Id of the running job to tune", optional=True),
        ExecutorOption("window_s", float, 30.0, "Length of one measurement window in seconds (wall clock)", gt=0),
        ExecutorOption("warmup_s", float, 20.0, "Seconds the job runs after a rescale before a window is measured", ge=0),
        _RATE_RPS,
        _SPEC_DIR,
        ExecutorOption("settle_timeout_s", float, 180.0, "Longest wait for the job to run at a new parallelism", gt=0),
        ExecutorOption("attempts", int, 4, "Tries of each REST call (network errors and 5xx answers are retried)", ge=1, le=20),
        ExecutorOption("read_only", bool, False, "Refuse any deployment that would change the job (tune --dry-run)"),
    ),
}


def _known(name: str) -> None:
    if name in _REGISTRY:
        return
    available = ", ".join(EXECUTOR_NAMES)
    if name in _PLANNED:
        raise UsageError(f"executor {name!r} is not available yet (available: {available})")
    raise UsageError(f"unknown executor {name!r} (choose from {available})")


@functools.cache
def options_model(name: str) -> type[BaseModel]:
    """The pydantic model of executor `name`'s options, built from EXECUTOR_OPTIONS on first use.

    Built lazily because importing pydantic would double the start-up time of `streamtune --help`.
    """
    from pydantic import ConfigDict, Field, create_model

    _known(name)
    fields: dict[str, Any] = {}
    for option in EXECUTOR_OPTIONS[name]:
        annotation: Any = option.type | None if option.optional else option.type
        fields[option.name] = (
            annotation,
            Field(option.default, gt=option.gt, ge=option.ge, le=option.le, description=option.help),
        )
    model = create_model(  # type: ignore[call-overload]
        _REGISTRY[name][2],
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, frozen=True),
        __doc__=f"Options of the {name!r} executor (EXECUTOR_OPTIONS[{name!r}]).",
        __module__=__name__,
        **fields,
    )
    return model


def executor_class(name: str) -> type:
    """The class of executor `name` (imports its module)."""
    _known(name)
    module, cls, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def executor_options(name: str, options: Mapping[str, Any]) -> BaseModel:
    """Validate `options` for executor `name` as data, building nothing; defaults fill what is left out.

    Raises UsageError for an unknown executor and ExecutorOptionError naming the first bad option.
    """
    from pydantic import ValidationError

    model = options_model(name)
    specs = {option.name: option for option in EXECUTOR_OPTIONS[name]}
    unknown = [key for key in options if key not in specs]
    if unknown:
        raise ExecutorOptionError(
            name,
            unknown[0],
            f"is not an option (options: {', '.join(specs)})",
            f"executor {name!r} has no option {', '.join(repr(u) for u in unknown)} (options: {', '.join(specs)})",
        )
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        option = str(exc.errors()[0]["loc"][0])
        raise ExecutorOptionError(name, option, f"{specs[option].requirement()}, got {options.get(option)!r}") from None


def make_executor(name: str, **options: Any) -> Executor:
    """Build the executor called `name` with keyword options (validated first; see executor_options)."""
    validated = executor_options(name, options)
    cls = executor_class(name)
    try:
        return cls(**validated.model_dump())
    except (TypeError, ValueError) as exc:  # a check the executor makes that the options model does not
        raise ExecutorOptionError(name, None, str(exc), f"executor {name!r}: bad options: {exc}") from None


def __getattr__(attr: str) -> Any:
    # The options models (SimOptions, ...) resolve on first use, like everything pydantic here.
    for name, (_, _, model_name) in _REGISTRY.items():
        if attr == model_name:
            return options_model(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
