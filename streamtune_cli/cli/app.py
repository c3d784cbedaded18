"""The `streamtune` Typer application: global options, error handling, and command registration."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from streamtune_cli import __version__
from streamtune_cli.cli.common import EXIT_CODES_HELP, StreamtuneGroup, debug_state

__all__ = ["app", "main"]

app = typer.Typer(
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"streamtune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """streamtune: fusion analysis and history-driven parallelism tuning for streaming jobs."""
    debug_state["on"] = debug


def _register_commands() -> None:
    # Each module in cli/commands registers its own commands; ORDER fixes their place in --help.
    from streamtune_cli.cli import commands

    modules = [importlib.import_module(f"{commands.__name__}.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=sys.argv[1:] if argv is None else argv, prog_name="streamtune")
