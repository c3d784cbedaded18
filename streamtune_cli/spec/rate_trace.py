"""Trace-file rate schedules: where a spec's `file` may point, and reading its `t_s,factor` rows.

One reader for every command: validation reads the file once to check it, and the executors read it the
same way, so no command accepts a trace another rejects. Only regular files inside the spec's folder are
read, at most MAX_TRACE_BYTES, and errors point at a line and column without echoing the file's contents.
"""

from __future__ import annotations

import bisect
import math
import os
from pathlib import Path

from streamtune_cli.errors import Location, Problem, SpecError
from streamtune_cli.io import read_text_bounded
from streamtune_cli.spec.models import MAX_RATE_FACTOR, MAX_SECONDS, MIN_RATE_FACTOR

__all__ = ["RateTrace", "load_rate_trace", "trace_path", "MAX_TRACE_BYTES", "MAX_TRACE_ROWS"]

# A day sampled every second is 86,400 rows; a year every minute 525,600. Far above any real trace,
# far below what would fill memory.
MAX_TRACE_ROWS = 1_000_000
MAX_TRACE_BYTES = 32 * 1024 * 1024
# A file with this many bad rows is not a trace: list the first ones and stop.
_MAX_PROBLEMS = 20


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


def trace_path(file: str, spec_dir: str | Path | None) -> Path:
    """The trace file a schedule names, resolved against the spec's folder (the working folder when the
    spec came from text). Raises ValueError saying why when it may not be read: an absolute path, or one
    that leaves the folder (by `..` or through a symbolic link). A spec from an untrusted change (a CI
    gate) must not make streamtune read, and quote, files elsewhere on the machine."""
    if not file or "\x00" in file:
        raise ValueError("the trace file name is empty or contains a NUL byte")
    name = Path(file)
    if name.is_absolute() or name.drive:
        raise ValueError("a trace file must be a path relative to the spec's folder, not an absolute path")
    base = Path(spec_dir) if spec_dir is not None else Path.cwd()
    try:
        folder = Path(os.path.realpath(base))
        resolved = Path(os.path.realpath(folder / name))
    except (OSError, ValueError) as exc:  # a symlink loop, a name too long for the OS
        raise ValueError(f"the trace file cannot be resolved: {exc}") from None
    if resolved != folder and folder not in resolved.parents:
        raise ValueError("a trace file must lie inside the spec's folder (no '..', no links out of it)")
    return folder / name


def load_rate_trace(path: str | Path) -> RateTrace:
    """Read a `t_s,factor` CSV (optional header, `#` comments); every problem names file, line and column."""
    path = Path(path)
    if not os.path.lexists(path):
        raise SpecError([Problem(Location(str(path)), "cannot read rate trace: no such file")])
    text = read_text_bounded(path, "rate trace", limit=MAX_TRACE_BYTES)
    times: list[float] = []
    factors: list[float] = []
    problems: list[Problem] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        if len(problems) >= _MAX_PROBLEMS:
            problems.append(Problem(Location(str(path), line_no, 1), "more problems follow; fix the ones above first"))
            break
        line = raw.split("#", 1)[0]
        if not line.strip():
            continue
        cells = line.split(",")
        # Line-level positions (column 1): the message names the field, never quotes the file's text.
        where = Location(str(path), line_no, 1)
        if len(cells) != 2:
            problems.append(Problem(where, f"expected 't_s,factor', got {len(cells)} field(s)"))
            continue
        values: list[float] = []
        for cell, what in zip(cells, ("t_s", "factor")):
            try:
                value = float(cell)
            except ValueError:
                if not times and not problems and what == "t_s" and cell.strip().lower() in ("t_s", "t", "time_s"):
                    break  # header row
                problems.append(Problem(where, f"{what} is not a number (expected 't_s,factor')"))
                break
            if not math.isfinite(value):
                problems.append(Problem(where, f"t_s and factor must be finite numbers ({what} is not)"))
                break
            values.append(value)
        if len(values) != 2:
            continue
        t_s, factor = values
        if not 0 <= t_s <= MAX_SECONDS:
            problems.append(Problem(where, f"t_s must be in [0, {MAX_SECONDS:g}] s"))
        elif not MIN_RATE_FACTOR <= factor <= MAX_RATE_FACTOR:
            problems.append(Problem(where, f"factor must be in [{MIN_RATE_FACTOR:g}, {MAX_RATE_FACTOR:g}]"))
        elif times and t_s < times[-1]:
            problems.append(Problem(where, f"t_s {t_s:g} goes back in time (previous {times[-1]:g})"))
        elif len(times) >= MAX_TRACE_ROWS:
            problems.append(Problem(where, f"more than {MAX_TRACE_ROWS:,} rows: resample the trace"))
            break
        else:
            times.append(t_s)
            factors.append(factor)
    if not problems and not times:
        problems.append(Problem(Location(str(path)), "the rate trace has no data rows"))
    if problems:
        raise SpecError(problems)
    return RateTrace(times, factors)
