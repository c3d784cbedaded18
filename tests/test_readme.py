"""Every streamtune command in the README's examples and in scripts/demo.sh runs and succeeds."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Examples", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README has no Examples code block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.startswith("streamtune ")]


def demo_commands() -> list[str]:
    lines = (ROOT / "scripts/demo.sh").read_text().splitlines()
    return ["streamtune " + line.removeprefix("$st ").strip() for line in lines if line.startswith("$st ")]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    # The commands use repo-relative paths and write outputs next to them: run them in a scratch copy.
    for name in ("configs", "sample_histories"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


@pytest.mark.parametrize("commands", [readme_examples(), demo_commands()], ids=["readme", "demo"])
def test_documented_commands_succeed_in_order(
    commands: list[str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(commands) >= 4
    monkeypatch.chdir(workdir)
    for command in commands:  # in order: later commands read what earlier ones wrote
        result = runner.invoke(app, shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"


def test_readme_and_ci_use_the_same_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
    assert "bash scripts/demo.sh" in readme
    assert os.access(ROOT / ".ci/run", os.X_OK)
