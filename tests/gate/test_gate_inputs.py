"""Hostile and mismatched gate inputs: repeated keys, absurd integers, devices, reports of another kind,
--update-baseline through links, onto read-only files or over another kind. Each is exit 2 with one clear
line naming the file (and position where there is one), never a traceback, never a hang."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.gate import ReportKind, report_kind

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "configs" / "gates" / "baseline-bench-quick.json"
FUSE = ROOT / "configs" / "gates" / "baseline-fuse-q5.json"

RULES = """\
rules:
  - metric: target_met
    equals: true
  - metric: final_total_parallelism
    direction: lower_is_better
    max_regression_pct: 10
"""

# summary.json as `tune --report` writes it (trimmed to what the rules read, plus the keys that mark its kind).
SUMMARY: dict[str, Any] = {
    "job": "q1",
    "reconfigurations": 2,
    "target_met": True,
    "final_total_parallelism": 9,
    "final_parallelism": {"a": 4, "b": 5},
}


def gate(*args: Any) -> Any:
    return runner.invoke(app, ["gate", *map(str, args)])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"rules": tmp_path / "rules.yaml", "base": tmp_path / "base.json", "report": tmp_path / "report.json"}
    paths["rules"].write_text(RULES)
    paths["base"].write_text(json.dumps({"schema": "streamtune.tune-summary/1", **SUMMARY}, indent=2))
    paths["report"].write_text(json.dumps({"schema": "streamtune.tune-summary/1", **SUMMARY}, indent=2))
    return paths


def one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    return line


def test_a_repeated_key_cannot_flip_the_verdict(files: dict[str, Path]) -> None:
    """The fuzz case: `target_met` false, then true again further down; json kept the last and passed."""
    text = files["report"].read_text().replace('"target_met": true', '"target_met": false')
    text = text.rstrip()[:-1].rstrip() + ',\n  "target_met": true\n}\n'
    files["report"].write_text(text)
    line = one_error_line(gate(files["report"], "-b", files["base"], "-r", files["rules"]))
    last = len(text.splitlines()) - 1
    assert f"report.json:{last}:3: duplicate key 'target_met' (first at " in line


@pytest.mark.parametrize("where", ["report", "base"])
def test_integers_with_hundreds_of_digits_are_bad_input(files: dict[str, Path], where: str) -> None:
    path = files[where]
    path.write_text(path.read_text().replace('"final_total_parallelism": 9', '"final_total_parallelism": ' + "9" * 400))
    line = one_error_line(gate(files["report"], "-b", files["base"], "-r", files["rules"]))
    assert f"{path.name}:6:30: an integer of 400 digits (final_total_parallelism) is out of range" in line


def test_devices_and_fifos_are_refused_without_hanging(files: dict[str, Path], tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for args, message in (
        (["/dev/zero", "-b", files["base"]], "/dev/zero: report file is not a regular file"),
        ([files["report"], "-b", fifo], f"{fifo}: baseline file is not a regular file"),
    ):
        # In a process of its own, so a regression (a read that never ends) fails here instead of hanging the suite.
        result = subprocess.run(
            [sys.executable, "-m", "streamtune_cli", "gate", *map(str, args), "-r", str(files["rules"])],
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_report_and_baseline_must_be_the_same_kind(files: dict[str, Path]) -> None:
    fusion = json.loads(FUSE.read_text())["schema"]  # streamtune.fusion/N, whatever N the planner writes now
    assert fusion.startswith("streamtune.fusion/")
    line = one_error_line(gate(files["report"], "-b", FUSE, "-r", files["rules"]))
    assert line == (
        f"error: {files['report']}: report is streamtune.tune-summary/1, but baseline {FUSE} is {fusion}: "
        "a gate compares reports of the same kind"
    )
    line = one_error_line(gate(BENCH, "-b", FUSE))
    assert "report is streamtune.bench/2, but baseline" in line and fusion in line


def test_old_files_without_schema_are_recognized_by_their_keys(files: dict[str, Path], tmp_path: Path) -> None:
    old = tmp_path / "old-summary.json"
    old.write_text(json.dumps(SUMMARY))  # summary.json as written before it carried a schema
    result = gate(files["report"], "-b", old, "-r", files["rules"])
    assert result.exit_code == 0, result.output
    assert "kind: report streamtune.tune-summary/1, baseline streamtune.tune-summary (no schema; inferred from its keys)" in result.output
    # and an old summary against a fusion report is still caught
    line = one_error_line(gate(old, "-b", FUSE))
    assert "report is streamtune.tune-summary (no schema; inferred from its keys), but baseline" in line
    # the JSON verdicts say the kinds too
    data = json.loads(gate(files["report"], "-b", old, "-r", files["rules"], "--json").output)
    assert data["kind"]["report"] == "streamtune.tune-summary/1"


@pytest.mark.parametrize(
    "data, kind",
    [
        ({"schema": "streamtune.bench/2"}, ReportKind("bench", 2)),
        ({"schema": "myorg.perf/3", "x": 1}, ReportKind("myorg.perf/3")),
        ({"aggregates": {}, "runs": [], "suite": "quick", "format_version": 2}, ReportKind("bench", 2, inferred=True)),
        ({"savings": {}, "stages": [], "edges": [], "tasks_saved": 0}, ReportKind("fusion", inferred=True)),
        (SUMMARY, ReportKind("tune-summary", inferred=True)),
        ({"x": 1}, ReportKind(None)),
        ([1, 2], ReportKind(None)),
    ],
)
def test_report_kind(data: Any, kind: ReportKind) -> None:
    assert report_kind(data, "r.json") == kind


@pytest.mark.parametrize("schema", ['"streamtune.bench"', '"streamtune.Bench/2"', "2", "true"])
def test_a_malformed_schema_is_bad_input_at_its_position(files: dict[str, Path], schema: str) -> None:
    files["report"].write_text('{\n  "schema": ' + schema + ',\n  "target_met": true, "final_total_parallelism": 9}')
    line = one_error_line(gate(files["report"], "-b", files["base"], "-r", files["rules"]))
    assert "report.json:2:13: schema" in line


def test_unknown_kinds_are_not_refused(tmp_path: Path, files: dict[str, Path]) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"target_met": True, "final_total_parallelism": 9}))
    result = gate(plain, "-b", plain, "-r", files["rules"])
    assert result.exit_code == 0, result.output
    assert "kind: not checked" in result.output


def test_update_baseline_refuses_another_kind(files: dict[str, Path], tmp_path: Path) -> None:
    baseline = tmp_path / "fuse-base.json"
    baseline.write_text(FUSE.read_text())
    line = one_error_line(gate(files["report"], "-b", baseline, "-r", files["rules"], "--update-baseline"))
    assert line.startswith("error: --update-baseline refused: report is streamtune.tune-summary/1, but baseline")
    assert baseline.read_text() == FUSE.read_text()


def test_update_baseline_does_not_write_through_a_link(files: dict[str, Path], tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(files["base"].read_text())
    link = tmp_path / "linked-base.json"
    link.symlink_to(outside)
    before = outside.read_text()
    files["report"].write_text(files["report"].read_text().replace('"final_total_parallelism": 9', '"final_total_parallelism": 7'))
    line = one_error_line(gate(files["report"], "-b", link, "-r", files["rules"], "--update-baseline"))
    assert f"{link} is a symbolic link" in line
    assert outside.read_text() == before and link.is_symlink()


def test_update_baseline_keeps_the_mode_and_refuses_a_read_only_baseline(files: dict[str, Path]) -> None:
    files["base"].chmod(0o640)
    assert gate(files["report"], "-b", files["base"], "-r", files["rules"], "--update-baseline").exit_code == 0
    assert stat.S_IMODE(files["base"].stat().st_mode) == 0o640
    files["base"].chmod(0o444)
    before = files["base"].read_text()
    line = one_error_line(gate(files["report"], "-b", files["base"], "-r", files["rules"], "--update-baseline"))
    assert f"cannot write {files['base']}: the file is read-only (mode 0444)" in line
    assert files["base"].read_text() == before


def test_junit_and_summary_outputs_follow_the_output_rules(files: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "real.xml"
    target.write_text("")
    link = tmp_path / "junit.xml"
    link.symlink_to(target)  # named explicitly by the user: written through
    assert gate(files["report"], "-b", files["base"], "-r", files["rules"], "--junit", link).exit_code == 0
    assert link.is_symlink() and "<testsuites" in target.read_text()
    loop = tmp_path / "loop.md"
    loop.symlink_to(loop)
    line = one_error_line(gate(files["report"], "-b", files["base"], "-r", files["rules"], "--summary", loop))
    assert f"cannot write {loop}: Too many levels of symbolic links" in line
    line = one_error_line(gate(files["report"], "-b", files["base"], "-r", files["rules"], "--junit", "/dev/zero"))
    assert "cannot write /dev/zero: it is a device" in line


def test_json_output_follows_the_output_convention(files: dict[str, Path], tmp_path: Path) -> None:
    """`--json` alone (or `-`) is stdout in place of the table; `--json PATH` writes the file and keeps the table."""
    on_stdout = gate(files["report"], "-b", files["base"], "-r", files["rules"], "--json")
    assert on_stdout.exit_code == 0, on_stdout.output
    data = json.loads(on_stdout.stdout)
    assert data["schema"] == "streamtune.gate/1" and data["passed"] is True
    path = tmp_path / "verdicts.json"
    to_file = gate(files["report"], "-b", files["base"], "-r", files["rules"], "--json", path)
    assert to_file.exit_code == 0 and "PASS" in to_file.stdout
    assert json.loads(path.read_text()) == data
    both = gate(files["report"], "-b", files["base"], "-r", files["rules"], "--json", "-", "--junit", "-")
    assert one_error_line(both).startswith("error: --junit and --json both want stdout")


@pytest.mark.parametrize("value, message", [("1" + "0" * 400, "an integer of 401 digits is out of range"), (".inf", "must be a finite number")])
def test_rules_bound_equals_like_json_inputs(value: str, message: str) -> None:
    from streamtune_cli.errors import SpecError
    from streamtune_cli.gate_rules import load_rules_text

    with pytest.raises(SpecError, match=message):
        load_rules_text(f"rules:\n  - metric: a\n    equals: {value}\n", "rules.yaml")


def test_the_json_tune_prints_gates_like_its_summary_json(tmp_path: Path) -> None:
    """`tune --json` and `tune --report DIR`'s summary.json are one kind: either gates against the other."""
    spec = ROOT / "configs" / "nexmark" / "q1.yaml"
    printed = runner.invoke(app, ["tune", str(spec), "--tuner", "ds2", "--json"])
    assert printed.exit_code in (0, 1), printed.output
    report = tmp_path / "tune.json"
    report.write_text(printed.stdout)
    made = runner.invoke(app, ["tune", str(spec), "--tuner", "ds2", "--report", str(tmp_path / "r")])
    assert made.exit_code in (0, 1), made.output
    summary = tmp_path / "r" / "summary.json"
    for a, b in ((report, summary), (summary, report)):
        result = gate(a, "-b", b)
        assert result.exit_code == 0, result.output
        assert "kind: streamtune.tune-summary/1" in result.stdout
        assert "tune footprint" in result.stdout  # the default rules for tune summaries were applied
    assert "report is streamtune.tune-summary/1, but baseline" in one_error_line(gate(report, "-b", FUSE))
