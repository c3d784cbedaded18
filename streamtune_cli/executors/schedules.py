"""Rate schedules as functions of time: the spec's built-in shapes, plus trace files (`t_s,factor` CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from streamtune_cli.errors import Location, Problem, SpecError
from streamtune_cli.spec.models import (
    Schedule,
    TraceSchedule,
)
from streamtune_cli.spec.rate_trace import RateTrace, load_rate_trace, trace_path

__all__ = ["RateTrace", "load_rate_trace", "rate_factor_function", "schedule_peak_factor"]


def rate_factor_function(schedule: Schedule, spec_dir: str | Path | None = None) -> Callable[[float], float]:
    """factor(t_s) for a schedule; a trace file is resolved against spec_dir (the spec's folder) and read once."""
    if isinstance(schedule, TraceSchedule):
        return load_rate_trace(_trace_path(schedule, spec_dir)).factor_at
    return schedule.factor_at


def schedule_peak_factor(schedule: Schedule, spec_dir: str | Path | None = None) -> float:
    """The highest factor a schedule reaches at any time: the peak a deployment must keep up with.

    constant: 1; step: the largest step factor (and 1 when the first step starts after t = 0, since the
    factor is 1 until then); square: max(low, high); sine: 1 + amplitude; trace: the largest factor in the
    file (read relative to spec_dir, as the sim reads it).
    """
    if isinstance(schedule, TraceSchedule):
        return load_rate_trace(_trace_path(schedule, spec_dir)).peak_factor
    return schedule.peak_factor()


def _trace_path(schedule: TraceSchedule, spec_dir: str | Path | None) -> Path:
    """The schedule's file under the rules every command shares (spec.rate_trace.trace_path)."""
    try:
        return trace_path(schedule.file, spec_dir)
    except ValueError as exc:
        raise SpecError([Problem(Location(schedule.file[:200]), str(exc))]) from None
