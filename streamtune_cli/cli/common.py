"""Helpers shared by the commands: consoles, spec loading, atomic output files, progress display."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console

import typer

from streamtune_cli.errors import EXIT_EXECUTOR, Location, Problem, SpecError, StreamtuneError
from streamtune_cli.io import write_json_atomic, write_text_atomic

__all__ = [
    "EXIT_OK",
    "EXIT_CHECK_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_INTERNAL",
    "EXIT_EXECUTOR",
    "debug_state",
    "add_command",
    "console",
    "err_console",
    "quiet_progress",
    "write_text_atomic",
    "write_json_atomic",
    "progress_bar",
    "expand_paths",
]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
# EXIT_EXECUTOR = 4 (errors.py): an executor failed; ExecutorError carries it as its exit_code.

# Rich assumes 80 columns when output is not a terminal; CI logs read better with long lines unfolded.
_LOG_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
console = Console(soft_wrap=False, width=_LOG_WIDTH)
err_console = Console(stderr=True, width=_LOG_WIDTH)
debug_state = {"on": False}


def _is_cli_control(exc: BaseException) -> bool:
    # typer.Exit/Abort and click's own usage errors must pass through to the framework untouched.
    if isinstance(exc, (typer.Exit, typer.Abort)):
        return True
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def add_command(app: typer.Typer, func: Callable[..., Any], name: str | None = None, **kwargs: Any) -> None:
    """Register `func` as a command whose errors print one line on stderr and exit with the error's code.

    That is 2 for bad input or usage and EXIT_EXECUTOR (4) when an executor failed (ExecutorError).

    Tracebacks appear only with --debug. Anything else that escapes is a bug of ours: it is reported
    as such with exit 3, still without a wall of text.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return func(*args, **kw)
        except StreamtuneError as exc:
            if debug_state["on"]:
                traceback.print_exc()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if _is_cli_control(exc):
                raise
            if debug_state["on"]:
                traceback.print_exc()
            typer.echo(
                f"internal error: {type(exc).__name__}: {exc}\n"
                "This is a bug in streamtune; run again with --debug for the traceback and report it.",
                err=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    app.command(name, **kwargs)(wrapper)


def quiet_progress() -> bool:
    """No animated progress in CI (CI=true) or when stdout is not a terminal."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or not sys.stdout.isatty()


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yields advance(n); shows a rich bar on a terminal, nothing in CI."""
    if quiet_progress():
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def expand_paths(patterns: list[str]) -> list[Path]:
    """Files named on the command line; unexpanded globs (quoted, or `**` without globstar) are expanded here."""
    import glob

    paths: list[Path] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(pattern, recursive=True)) if Path(m).is_file()]
            if not matches:
                raise SpecError([Problem(Location(pattern), "no file matches this pattern")])
            paths += matches
        else:
            paths.append(Path(pattern))
    return paths


def fmt_compact(value: float) -> str:
    """1,234,567 -> 1.23M, 999,700 -> 1M (never 1e+03k): keeps wide tables readable on 80 columns."""
    units = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
    for i, (limit, suffix) in enumerate(units):
        if abs(value) >= limit or suffix == "":
            text = f"{value / limit:.3g}"
            if "e" in text and i > 0:  # rounded up to 1000 of this unit: one unit up
                limit, suffix = units[i - 1]
                text = f"{value / limit:.3g}"
            return text + suffix
    raise AssertionError("unreachable")
