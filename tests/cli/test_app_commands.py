"""`main` builds only the command it runs (cli/app.py, COMMAND_MODULES): the map must match what the command
modules register, and a light app must behave as the full one for its command."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from streamtune_cli.cli import commands
from streamtune_cli.cli.app import COMMAND_MODULES, build_app, command_of, main

REPO = Path(__file__).resolve().parents[2]


def registered_by(module_name: str) -> set[str]:
    probe = typer.Typer()
    importlib.import_module(f"{commands.__name__}.{module_name}").register(probe)
    names = {info.name for info in probe.registered_commands} | {info.name for info in probe.registered_groups}
    assert None not in names, f"{module_name} registers a command without an explicit name"
    return names  # type: ignore[return-value]


def test_the_map_names_every_command_of_every_module_and_nothing_else() -> None:
    modules = [m.name for m in pkgutil.iter_modules(commands.__path__)]
    found = {name: module for module in modules for name in registered_by(module)}
    assert found == COMMAND_MODULES


def test_the_full_app_has_every_command_in_help_order() -> None:
    group = typer.main.get_command(build_app())
    assert list(group.commands) == [  # type: ignore[attr-defined]
        "validate", "show", "schema", "fuse", "run", "tune", "simulate", "calibrate", "bench", "pretrain",
        "gate", "history", "cluster", "flink", "import",
    ]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["validate", "x.yaml"], "validate"),
        (["--debug", "fuse", "x.yaml"], "fuse"),
        (["history", "stats", "h"], "history"),
        (["--help"], None),
        ([], None),
        (["nosuch"], None),
        (["--", "validate"], None),
    ],
)
def test_command_of(args: list[str], expected: str | None) -> None:
    assert command_of(args) == expected


def test_running_a_command_imports_no_other_command_module() -> None:
    code = (
        "import sys\nfrom streamtune_cli.cli.app import main\n"
        "try:\n    main(['--debug', 'validate', 'configs/nexmark/q1.yaml'])\nexcept SystemExit as exc:\n    print('EXIT', exc.code)\n"
        "print('LOADED', sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('streamtune_cli.cli.commands.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert "EXIT 0" in out
    assert "LOADED ['spec_commands']" in out


def test_unknown_commands_and_root_help_see_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    for name in COMMAND_MODULES:
        assert f" {name} " in help_text
    with pytest.raises(SystemExit) as info:
        main(["valdate", "x.yaml"])
    assert info.value.code == 2
    assert "No such command 'valdate'" in capsys.readouterr().err


@pytest.mark.parametrize("group", ["history", "cluster", "flink", "import"])
def test_group_help_shows_flags_without_a_type(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([group, "-h"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--help" in out and "<bool>" not in out
