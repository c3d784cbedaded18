"""The `streamtune` Typer application: global options, error handling, and command registration."""

from __future__ import annotations

import functools
import importlib
import os
import sys

import typer

from streamtune_cli import __version__
from streamtune_cli.cli.common import EXIT_CODES_HELP, StreamtuneGroup, debug_state

__all__ = ["COMMAND_MODULES", "app", "build_app", "command_of", "main"]

# Which module of cli/commands defines each top-level command or group. `main` imports only the module of
# the command it runs (importing and building the others is start-up time for nothing);
# tests/cli/test_app_commands.py checks this map against what the modules register.
COMMAND_MODULES: dict[str, str] = {
    "validate": "spec_commands",
    "show": "spec_commands",
    "schema": "spec_commands",
    "fuse": "fuse_commands",
    "run": "run_commands",
    "tune": "tuning_commands",
    "simulate": "tuning_commands",
    "calibrate": "calibrate_commands",
    "bench": "bench_commands",
    "pretrain": "pretrain_commands",
    "gate": "gate_commands",
    "history": "history_commands",
    "cluster": "history_commands",
    "flink": "flink_commands",
    "import": "flink_commands",
}
_COMPLETION_VARIABLE = "_STREAMTUNE_COMPLETE"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"streamtune {__version__}")
        raise typer.Exit()


def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """streamtune: fusion analysis and history-driven parallelism tuning for streaming jobs."""
    debug_state["on"] = debug


@functools.lru_cache(maxsize=None)
def build_app(only: str | None = None) -> typer.Typer:
    """The application with every command, or with only the module that defines command `only` (built once
    per process each: modules register their groups' subcommands on module-level apps)."""
    from streamtune_cli.cli import commands

    application = typer.Typer(
        name="streamtune",
        cls=StreamtuneGroup,
        help="Fuse operators and tune parallelism of streaming dataflow jobs (Flink and the like).",
        epilog=(
            f"{EXIT_CODES_HELP}\n\nOutputs: every output option takes a PATH, and '-' is stdout; `--json` alone is "
            "`--json -`. Every JSON output names its format in a `schema` field (streamtune.<kind>/<N>). "
            "--debug (before or after the command) shows tracebacks. Shell completion: "
            "`streamtune --install-completion`. Details: docs/cli.md."
        ),
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    application.callback()(_root)
    names = sorted(set(COMMAND_MODULES.values())) if only is None else [COMMAND_MODULES[only]]
    modules = [importlib.import_module(f"{commands.__name__}.{name}") for name in names]
    # ORDER fixes each module's place in --help.
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(application)
    return application


def __getattr__(name: str) -> typer.Typer:
    # `app` (every command) is built on first use: `main` builds a lighter one when it knows the command.
    if name == "app":
        application = build_app(None)
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command_of(args: list[str]) -> str | None:
    """The top-level command `args` runs, when it is one of COMMAND_MODULES (root options are flags)."""
    for arg in args:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMAND_MODULES else None
    return None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    command = None if os.environ.get(_COMPLETION_VARIABLE) else command_of(args)
    build_app(command)(args=args, prog_name="streamtune")
