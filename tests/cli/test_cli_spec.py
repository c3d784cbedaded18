"""The CLI surface of the foundation: help, validate, show, exit codes and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from streamtune_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_help_lists_commands_with_one_line_each() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "show"):
        assert command in result.output


def test_validate_all_shipped_job_specs() -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "configs/nexmark/*.yaml"), str(ROOT / "configs/synthetic/*.yaml")])
    assert result.exit_code == 0, result.output
    for name in ("nexmark-q1", "nexmark-q11", "diamond", "wide-fanout"):
        assert name in result.output


def test_validate_reports_every_invalid_file(tmp_path: Path) -> None:
    good = ROOT / "configs/nexmark/q1.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("cost_us: 1.5", "cost_us: -1.5").replace("cost_us: 4.0", "cost_us: 0"))
    later = tmp_path / "later.yaml"
    later.write_text("not: [valid")
    result = runner.invoke(app, ["validate", str(good), str(bad), str(later)])
    assert result.exit_code == 2
    assert "nexmark-q1" in result.output  # the valid file is in the table
    assert result.output.count(f"{bad}:") >= 3  # header + both problems, each with a position
    assert f"{later}:1:" in result.output  # the file after the first invalid one is checked too
    assert "2 of 3 files invalid" in result.output
    assert "Traceback" not in result.output


def test_validate_recurses_into_folders(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "q1.yml").write_text((ROOT / "configs/nexmark/q1.yaml").read_text())
    (tmp_path / "a" / "broken.yaml").write_text("name: [")
    (tmp_path / "a" / "notes.txt").write_text("not yaml: [")
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "q1.yml" in result.output and "nexmark-q1" in result.output
    assert f"{tmp_path / 'a' / 'broken.yaml'}:1:" in result.output
    assert "notes.txt" not in result.output
    ok = runner.invoke(app, ["validate", str(ROOT / "configs"), "--no-sql"])
    assert ok.exit_code == 0, ok.output
    shipped = sorted(ROOT.glob("configs/**/*.yaml"))
    assert len(shipped) >= 10 and all(p.name in ok.output for p in shipped)


def test_show_formats() -> None:
    spec = str(ROOT / "configs/nexmark/q3.yaml")
    text = runner.invoke(app, ["show", spec])
    assert text.exit_code == 0 and "seller_join" in text.output and "(see above)" in text.output
    mermaid = runner.invoke(app, ["show", spec, "--format", "mermaid"])
    assert mermaid.output.startswith("flowchart LR")
    assert mermaid.output.count("-->") == 6
    data = json.loads(runner.invoke(app, ["show", spec, "-f", "json"]).output)
    assert data["name"] == "nexmark-q3"
    assert data["topological_order"].index("seller_join") > data["topological_order"].index("local_sellers")


def test_missing_file_is_exit_2_without_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.output and "Traceback" not in result.output


def test_debug_shows_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [")
    result = subprocess.run(
        [sys.executable, "-m", "streamtune_cli", "--debug", "validate", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    quiet = subprocess.run([sys.executable, "-m", "streamtune_cli", "validate", str(bad)], capture_output=True, text=True)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert f"{bad}:1:" in quiet.stderr


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("streamtune ")


def test_validate_every_shipped_yaml_as_bash_expands_double_star() -> None:
    # Without globstar bash reads configs/**/*.yaml as configs/*/*.yaml: suites and gate rules included.
    files = sorted(str(p) for p in ROOT.glob("configs/*/*.yaml"))
    kinds = {"bench suite": "/bench/", "gate rules": "/gates/"}
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 0, result.output
    for kind, folder in kinds.items():
        if any(folder in f for f in files):
            assert kind in result.output


def test_validate_reports_broken_suite_and_rules_with_positions(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\njobs: [missing.yaml]\ntuners: [ds2]\n")
    result = runner.invoke(app, ["validate", str(suite)])
    assert result.exit_code == 2 and f"{suite}:2:" in result.output and "not found" in result.output
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - metric: a.b\n    bogus: 1\n")
    result = runner.invoke(app, ["validate", str(rules)])
    assert result.exit_code == 2 and f"{rules}:3:5" in result.output
