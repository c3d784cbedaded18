"""Rate schedules as functions of time: the spec's built-in shapes, plus trace files (`t_s,factor` CSV)."""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Callable

from streamtune_cli.errors import Location, Problem, SpecError
from streamtune_cli.spec.models import (
    Schedule,
    TraceSchedule,
)

__all__ = ["RateTrace", "load_rate_trace", "rate_factor_function", "schedule_peak_factor"]


class RateTrace:
    """Piecewise-linear rate factor through (t_s, factor) points; constant before the first and after the last."""

    def __init__(self, times_s: list[float], factors: list[float]):
        if not times_s or len(times_s) != len(factors):
            raise ValueError("a rate trace needs at least one (t_s, factor) point")
        self.times_s = list(times_s)
        self.factors = list(factors)

    def factor_at(self, t_s: float) -> float:
        times, factors = self.times_s, self.factors
        if t_s <= times[0]:
            return factors[0]
        if t_s >= times[-1]:
            return factors[-1]
        i = bisect.bisect_right(times, t_s)
        t0, t1 = times[i - 1], times[i]
        if t1 == t0:
            return factors[i]
        w = (t_s - t0) / (t1 - t0)
        return factors[i - 1] + w * (factors[i] - factors[i - 1])

    @property
    def peak_factor(self) -> float:
        """The highest factor the trace reaches (linear interpolation never exceeds its points)."""
        return max(self.factors)


def load_rate_trace(path: str | Path) -> RateTrace:
    """Read a `t_s,factor` CSV (optional header, `#` comments); every problem names file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([Problem(Location(str(path)), f"cannot read rate trace: {exc.strerror or exc}")]) from None
    times: list[float] = []
    factors: list[float] = []
    problems: list[Problem] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cells = [c.strip() for c in line.split(",")]
        where = Location(str(path), line_no, 1)
        if len(cells) != 2:
            problems.append(Problem(where, f"expected 't_s,factor', got {len(cells)} field(s)"))
            continue
        try:
            t_s, factor = float(cells[0]), float(cells[1])
        except ValueError:
            if not times and not problems and cells[0].lower() in ("t_s", "t", "time_s"):
                continue  # header row
            problems.append(Problem(where, f"not numbers: {line!r}"))
            continue
        if not (math.isfinite(t_s) and math.isfinite(factor)):
            problems.append(Problem(where, f"t_s and factor must be finite numbers, got {line!r}"))
            continue
        if t_s < 0 or factor <= 0:
            problems.append(Problem(where, "t_s must be >= 0 and factor > 0"))
            continue
        if times and t_s < times[-1]:
            problems.append(Problem(where, f"t_s {t_s:g} goes back in time (previous {times[-1]:g})"))
            continue
        times.append(t_s)
        factors.append(factor)
    if not problems and not times:
        problems.append(Problem(Location(str(path)), "the rate trace has no data rows"))
    if problems:
        raise SpecError(problems)
    return RateTrace(times, factors)


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
    file = Path(schedule.file)
    if not file.is_absolute() and spec_dir is not None:
        file = Path(spec_dir) / file
    return file
