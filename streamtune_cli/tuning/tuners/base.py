"""The Tuner protocol and the rate bookkeeping every metric-driven tuner shares (target propagation)."""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from streamtune_cli.executors.base import Decision, Observation, Parallelism, TraceStep
from streamtune_cli.tuning.view import JobView
from streamtune_cli.spec.models import Partitioning

__all__ = [
    "Tuner",
    "target_input_rates",
    "output_ratio",
    "ceil_instances",
    "unchanged",
    "OptionError",
    "number_option",
    "int_option",
    "bool_option",
]

# Relative slack before rounding up, so a ratio like 2.0000000001 (float round-off) means 2 instances.
_CEIL_SLACK = 1e-9


@runtime_checkable
class Tuner(Protocol):
    """Proposes a full parallelism map from the latest observation (and the steps before it)."""

    name: str

    def propose(
        self, graph: JobView, parallelism: Parallelism, observation: Observation, history: list[TraceStep]
    ) -> Decision:
        """`graph` is the job as deployed, `history` the steps before this observation (oldest first)."""


class OptionError(ValueError):
    """A tuner option with a value the tuner cannot use; `option` names it (for file:line:col in suites)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.detail = message


def number_option(
    option: str, value: object, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    """A finite real option in [low, high] ((low, high] when low_open); ints are accepted, bools are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(option, f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise OptionError(option, f"expected a finite number, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise OptionError(option, f"must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and number > high:
        raise OptionError(option, f"must be <= {high:g}, got {value!r}")
    return number


def int_option(option: str, value: object, *, low: int, high: int | None = None) -> int:
    """An integer option in [low, high]; floats (even 2.0) and bools are not integers here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(option, f"expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise OptionError(option, f"must be {bounds}, got {value!r}")
    return value


def bool_option(option: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise OptionError(option, f"expected true or false, got {value!r}")
    return value


def output_ratio(observation: Observation, op_id: str) -> float:
    """Records out per record in, as measured (= true output rate / true processing rate in DS2's terms)."""
    metrics = observation.operators[op_id]
    if metrics.input_rate_rps <= 0:
        return 0.0
    return metrics.output_rate_rps / metrics.input_rate_rps


def target_input_rates(
    graph: JobView, parallelism: Parallelism, observation: Observation, *, source_total_rps: float | None = None
) -> dict[str, float]:
    """Input rate each operator must sustain for the sources to ingest their target (DS2's propagation).

    Sources take the external target (split by rate_share); downstream, target input = sum over inputs of
    upstream target x measured output ratio. A broadcast input delivers every record to each of the
    downstream instances, so it counts x the current parallelism (what the measured input rate includes).
    """
    total = observation.target_rate_rps if source_total_rps is None else source_total_rps
    source_targets = graph.source_rates(total)
    targets: dict[str, float] = {}
    for op_id in graph.topological_order:
        if op_id in source_targets:
            targets[op_id] = source_targets[op_id]
            continue
        rate = 0.0
        for up in graph.upstream(op_id):
            fan = parallelism[op_id] if graph.edge(up, op_id).partitioning == Partitioning.broadcast else 1
            rate += targets[up] * output_ratio(observation, up) * fan
        targets[op_id] = rate
    return targets


def ceil_instances(x: float) -> int:
    """ceil(x) for an instance count, at least 1, ignoring float round-off just above an integer."""
    if not math.isfinite(x):
        raise ValueError(f"instance count is not finite: {x}")
    return max(1, math.ceil(x * (1 - _CEIL_SLACK)))


def unchanged(parallelism: Parallelism, proposed: Parallelism) -> bool:
    return all(proposed.get(op, p) == p for op, p in parallelism.items())
