"""Start-up cost guard: the CLI and the light commands must not import the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "torch_geometric", "polars", "networkx", "numpy", "scipy")


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('HEAVY=' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    marker = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")][-1]
    return {m for m in marker.removeprefix("HEAVY=").split(",") if m}


def run_and_list_heavy(command: list[str]) -> set[str]:
    code = (
        "from streamtune_cli.cli.app import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit:\n    pass"
    )
    return imported_after(code)


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
    assert not run_and_list_heavy(command) & {"torch", "torch_geometric"}


@pytest.mark.parametrize(
    "command",
    [
        # q3 and q11 have skewed keyed operators (key shares in plain Python) and SQL predicates.
        ["validate", "configs/nexmark/q3.yaml"],
        ["fuse", "configs/nexmark/q3.yaml"],
        ["fuse", "configs/nexmark/q11.yaml", "--mode", "flink"],
        ["fuse", "configs/nexmark/q1.yaml", "--mode", "semantic"],
    ],
)
def test_validate_and_fuse_import_no_numeric_or_graph_library(command: list[str]) -> None:
    """The start-up goals (docs/cli.md, "Start-up") rest on `validate` and `fuse` not paying for networkx,
    numpy, scipy or polars: each costs tens of milliseconds to import."""
    assert run_and_list_heavy(command) == set()
