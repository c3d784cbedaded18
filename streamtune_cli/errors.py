"""Errors a user can cause. The CLI prints them as one clear message and exits 2 (no traceback)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Location",
    "Problem",
    "StreamtuneError",
    "SpecError",
    "UsageError",
    "ExecutorError",
    "EXIT_EXECUTOR",
    "excerpt",
    "EXCERPT_CHARS",
    "MAX_PROBLEMS_SHOWN",
]

# An executor (a cluster, a local engine) failed or refused: not the user's input, not a bug of ours.
EXIT_EXECUTOR = 4


# A file with thousands of broken entries gets the first ones listed, not thousands of lines.
MAX_PROBLEMS_SHOWN = 50
# The most characters of a user's value an error message quotes: enough to recognise it, never a wall of
# text (a 100 KB id or SQL string must not fill a terminal or a CI log).
EXCERPT_CHARS = 60


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """`repr(value)` cut to about `limit` characters, saying how long the whole value is."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        # repr() of an int past ~4300 digits raises; the size is what matters anyway.
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


@dataclass(frozen=True)
class Location:
    """A position in a user's file; line and column are 1-based, as editors show them."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, with where it is."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class StreamtuneError(Exception):
    """Base for errors caused by input or usage; exit code 2."""

    exit_code = 2


class SpecError(StreamtuneError):
    """A job spec (or other input file) is invalid; carries every problem found, each with a position."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("SpecError needs at least one problem")
        self.problems = problems
        super().__init__(self.render())

    @property
    def file(self) -> str:
        return self.problems[0].location.file

    def render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{self.file}: {len(self.problems)} problems"]
        lines += [f"  {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more (fix the ones above first)")
        return "\n".join(lines)


class UsageError(StreamtuneError):
    """A command was called with arguments that cannot work together."""


class ExecutorError(StreamtuneError):
    """An executor could not do what was asked (a cluster answered 503, a job failed, observe before deploy).

    One clear line naming the executor; exit code 4 (EXIT_EXECUTOR), distinct from bad input (2) and bugs (3).
    """

    exit_code = EXIT_EXECUTOR

    def __init__(self, executor: str, message: str):
        super().__init__(f"executor {executor!r}: {message}")
        self.executor = executor
        self.detail = message
