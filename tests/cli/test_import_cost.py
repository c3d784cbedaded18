"""Start-up cost guard: the CLI and the light commands must not import the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "torch_geometric", "polars")


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('HEAVY=' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    marker = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")][-1]
    return {m for m in marker.removeprefix("HEAVY=").split(",") if m}


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert imported_after("import streamtune_cli.cli.app") == set()


def test_help_runs_without_heavy_imports() -> None:
    code = (
        "from streamtune_cli.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert imported_after(code) == set()


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "--no-sql", "configs/nexmark/q5.yaml"],
        ["show", "configs/synthetic/diamond.yaml"],
        ["pretrain", "--help"],
        ["fuse", "configs/nexmark/q1.yaml"],
        ["tune", "configs/nexmark/q1.yaml", "--tuner", "ds2", "--max-steps", "2"],
    ],
)
def test_light_commands_do_not_import_torch(command: list[str]) -> None:
    code = (
        "from streamtune_cli.cli.app import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit:\n    pass"
    )
    assert not imported_after(code) & {"torch", "torch_geometric"}
