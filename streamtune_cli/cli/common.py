"""Helpers shared by the commands: consoles, the output convention (docs/cli.md), exit codes, atomic output
files, progress display."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console

import typer
from typer.core import TyperCommand, TyperGroup

from streamtune_cli.errors import EXIT_EXECUTOR, Location, Problem, SpecError, StreamtuneError
from streamtune_cli.io import write_json_atomic, write_text_atomic

__all__ = [
    "EXIT_OK",
    "EXIT_CHECK_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_INTERNAL",
    "EXIT_EXECUTOR",
    "EXIT_INTERRUPTED",
    "EXIT_CODES_HELP",
    "OPTIONAL_PATH",
    "StreamtuneCommand",
    "StreamtuneGroup",
    "debug_state",
    "json_option",
    "is_stdout",
    "write_output",
    "check_one_stdout",
    "notice_console",
    "print_written",
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
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT (128 + 2)

# Shown at the end of `streamtune --help`; docs/cli.md has the same table with more detail.
EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 a check failed (gate regression, tune did not meet its target or stalled); "
    "2 bad input or usage; 3 internal error (a bug: please report it); 4 an executor failed; 130 interrupted."
)

# The metavar of an output option whose value may be left out: `--json` alone means `--json -` (stdout).
OPTIONAL_PATH = "[PATH]"
STDOUT = "-"

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


def _optional_value_options(command: Any) -> set[str]:
    """The option names of `command` whose value may be left out (metavar OPTIONAL_PATH)."""
    names: set[str] = set()
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option" and not getattr(param, "is_flag", False):
            if param.metavar == OPTIONAL_PATH:
                names.update(param.opts)
    return names


def _quiet_flags(params: list[Any]) -> list[Any]:
    """Flags take no value: show none (typer would print `<bool>` next to every one of them)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class StreamtuneGroup(TyperGroup):
    """The command groups (`streamtune`, `streamtune flink`, ...): flags shown without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _quiet_flags(super().get_params(ctx))


def _is_input(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml"))


class StreamtuneCommand(TyperCommand):
    """A typer command whose `[PATH]` options may be given without a value, meaning stdout (`-`).

    Typer has no options with an optional value, so the arguments are completed before parsing: such an
    option followed by nothing, by another option, or by a YAML file (a job spec: `tune --json job.yaml`;
    no output is YAML) gets `-` inserted after it. `--json=PATH` and `--json PATH` are untouched.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        return _quiet_flags(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        optional = _optional_value_options(self)
        completed: list[str] = []
        for i, arg in enumerate(args):
            completed.append(arg)
            if arg == "--":
                completed += args[i + 1 :]
                break
            if arg in optional:
                following = args[i + 1] if i + 1 < len(args) else None
                if following is None or (following.startswith("-") and following != STDOUT) or _is_input(following):
                    completed.append(STDOUT)
        return super().parse_args(ctx, completed)


def _with_debug_option(wrapper: Callable[..., Any], func: Callable[..., Any]) -> None:
    """Give the command its own `--debug`, so it works after the command name too (`streamtune tune --debug`)."""
    signature = inspect.signature(func)
    debug = inspect.Parameter(
        "debug",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(False, "--debug", help="Show full tracebacks on errors (also before the command)."),
        annotation=bool,
    )
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), debug])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**getattr(func, "__annotations__", {}), "debug": bool}


def add_command(app: typer.Typer, func: Callable[..., Any], name: str | None = None, **kwargs: Any) -> None:
    """Register `func` as a command whose errors print one line on stderr and exit with the error's code.

    That is 2 for bad input or usage and EXIT_EXECUTOR (4) when an executor failed (ExecutorError),
    130 when interrupted.

    Tracebacks appear only with --debug (before or after the command name). Anything else that escapes is
    a bug of ours: it is reported as such with exit 3, still without a wall of text. Every command is a
    StreamtuneCommand: its `[PATH]` output options may be given without a value (stdout).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kw: Any) -> Any:
        if kw.pop("debug", False):
            debug_state["on"] = True
        try:
            return func(*args, **kw)
        except StreamtuneError as exc:
            if debug_state["on"]:
                traceback.print_exc()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
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

    _with_debug_option(wrapper, func)
    kwargs.setdefault("cls", StreamtuneCommand)
    # The command list shows the docstring's first paragraph; typer would keep its line breaks.
    first_paragraph = (inspect.getdoc(func) or "").split("\n\n", 1)[0]
    kwargs.setdefault("short_help", " ".join(first_paragraph.split()) or None)
    app.command(name, **kwargs)(wrapper)


def json_option(help_text: str) -> Any:
    """`--json [PATH]`: the JSON output to PATH; `-`, or no PATH, is stdout (in place of the tables)."""
    return typer.Option(
        None, "--json", metavar=OPTIONAL_PATH, help=f"{help_text} Written to PATH; to stdout, in place of the tables, "
        "when PATH is '-' or left out.",
    )


def is_stdout(path: str | Path | None) -> bool:
    return path is not None and str(path) == STDOUT


def check_one_stdout(**outputs: str | Path | None) -> None:
    """At most one output may go to stdout: two would be interleaved into something neither can parse."""
    from streamtune_cli.errors import UsageError

    on_stdout = [f"--{name.replace('_', '-')}" for name, path in outputs.items() if is_stdout(path)]
    if len(on_stdout) > 1:
        raise UsageError(f"{' and '.join(on_stdout)} both want stdout ('-'); write all but one of them to a file")


def write_output(path: str | Path, content: str | dict[str, Any]) -> Path | None:
    """Write text (or JSON, indented, for a dict) to the path a user named, atomically, or to stdout for '-'.

    Returns the path written, None for stdout, so callers list only real files.
    """
    text = json.dumps(content, indent=2, allow_nan=False) + "\n" if isinstance(content, dict) else content
    written = write_text_atomic(path, text, explicit=True)
    return None if is_stdout(path) else written


def notice_console(data_on_stdout: bool) -> Console:
    """Where tables and notes go: stdout, unless stdout carries data (`--json -`), then stderr."""
    return err_console if data_on_stdout else console


def print_written(paths: list[Path | None], data_on_stdout: bool = False) -> None:
    """One `wrote PATH` line per file written (stdout when that is free, else stderr)."""
    out = notice_console(data_on_stdout)
    for path in paths:
        if path is not None:
            out.print(f"wrote {path}", highlight=False, markup=False, soft_wrap=True)


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
