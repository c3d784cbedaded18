"""Trace-schedule files (issue 15): only regular files inside the spec's folder are read, with size and row
caps, positioned errors that do not echo the file, and the same verdict from every command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.errors import SpecError
from streamtune_cli.executors.schedules import rate_factor_function
from streamtune_cli.spec import load_spec
from streamtune_cli.spec import rate_trace
from streamtune_cli.spec.rate_trace import load_rate_trace, trace_path

runner = CliRunner()

SPEC = """\
name: traced
workload:
  rate_rps: 1000
  schedule: {{kind: trace, file: {file}}}
operators:
  - {{id: src, kind: source}}
  - {{id: sink, kind: sink}}
edges:
  - {{from: src, to: sink}}
"""
GOOD = "t_s,factor\n0,1.0\n300,2.5\n600,0.5\n"
# Where `file:` sits in SPEC (1-based), computed from the text.
_LINES = SPEC.format(file="X").splitlines()
FILE_LINE = next(i for i, line in enumerate(_LINES, start=1) if "file: X" in line)
FILE_COL = _LINES[FILE_LINE - 1].index("file:") + 1


def write_spec(folder: Path, file: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.yaml"
    path.write_text(SPEC.format(file=file))
    return path


def spec_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value


@pytest.mark.parametrize("file", ["rates.csv", "sub/rates.csv", "sub/../rates.csv", "link.csv"])
def test_traces_inside_the_spec_folder_are_read(tmp_path: Path, file: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "rates.csv").write_text(GOOD)
    (tmp_path / "sub" / "rates.csv").write_text(GOOD)
    (tmp_path / "link.csv").symlink_to("sub/rates.csv")  # a link that stays inside is fine
    spec = load_spec(write_spec(tmp_path, file))
    assert rate_factor_function(spec.workload.schedule, tmp_path)(300) == 2.5


@pytest.mark.parametrize(
    ("setup", "file", "message"),
    [
        (None, "/dev/zero", "relative to the spec's folder"),
        (None, "/etc/hostname", "relative to the spec's folder"),
        ("outside", "../outside.csv", "inside the spec's folder"),
        ("link_out", "link.csv", "inside the spec's folder"),
        ("link_dev", "zero.csv", "inside the spec's folder"),
        (None, "missing.csv", "not found"),
        ("folder", "sub", "not a regular file"),
        ("fifo", "pipe.csv", "not a regular file"),
    ],
)
def test_forbidden_or_unreadable_traces_are_spec_errors_at_the_file_field(
    tmp_path: Path, setup: str | None, file: str, message: str
) -> None:
    folder = tmp_path / "spec"
    folder.mkdir()
    if setup == "outside":
        (tmp_path / "outside.csv").write_text(GOOD)
    elif setup == "link_out":
        (tmp_path / "outside.csv").write_text(GOOD)
        (folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    elif setup == "link_dev":
        (folder / "zero.csv").symlink_to("/dev/zero")
    elif setup == "folder":
        (folder / "sub").mkdir()
    elif setup == "fifo":
        os.mkfifo(folder / "pipe.csv")  # opening it would block forever: it must not be opened
    error = spec_error(write_spec(folder, file))
    problem = error.problems[0]
    assert (problem.location.file, problem.location.line, problem.location.column) == (
        str(folder / "job.yaml"), FILE_LINE, FILE_COL
    )
    assert message in problem.message


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"t_s,factor\n0,1\n10,\xff\n", 3, "not UTF-8"),
        ("0,1\n10,2e3\n", 2, "factor must be in"),
        ("0,1\n1e10,2\n", 2, "t_s must be in"),
        ("0,1\n10,1e308\n", 2, "factor must be in"),
        ("0,1\n10,nan\n", 2, "finite"),
        ("0,1\nsecret-api-token,hunter2\n", 2, "not a number"),
    ],
)
def test_bad_trace_contents_name_the_csv_line_without_echoing_it(
    tmp_path: Path, content: bytes | str, line: int, message: str
) -> None:
    csv = tmp_path / "rates.csv"
    csv.write_bytes(content if isinstance(content, bytes) else content.encode())
    error = spec_error(write_spec(tmp_path, "rates.csv"))
    problem = error.problems[0]
    assert (problem.location.file, problem.location.line) == (str(csv), line)
    assert message in problem.message
    assert "secret" not in str(error) and "hunter2" not in str(error)


def test_size_and_row_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "rates.csv"
    csv.write_text("".join(f"{i},1\n" for i in range(200)))
    monkeypatch.setattr(rate_trace, "MAX_TRACE_ROWS", 100)
    with pytest.raises(SpecError, match="more than 100 rows") as info:
        load_rate_trace(csv)
    assert info.value.problems[0].location.line == 101
    monkeypatch.setattr(rate_trace, "MAX_TRACE_BYTES", 64)
    with pytest.raises(SpecError, match="larger than"):
        load_rate_trace(csv)


def test_a_file_of_garbage_lists_a_few_problems_not_all(tmp_path: Path) -> None:
    csv = tmp_path / "rates.csv"
    csv.write_text("x,y\n" * 10_000)
    with pytest.raises(SpecError) as info:
        load_rate_trace(csv)
    assert len(info.value.problems) <= 25
    assert len(str(info.value)) < 5000


def test_trace_path_resolves_against_the_spec_folder_only(tmp_path: Path) -> None:
    assert trace_path("a/b.csv", tmp_path) == Path(os.path.realpath(tmp_path)) / "a" / "b.csv"
    for bad in ("/abs.csv", "../x.csv", "a/../../x.csv", "", "a\x00b"):
        with pytest.raises(ValueError):
            trace_path(bad, tmp_path)


COMMANDS = [
    ["validate"],
    ["show"],
    ["fuse"],
    ["simulate", "--noise", "0"],
    ["tune", "--executor", "sim", "--tuner", "ds2", "--max-steps", "2"],
]


@pytest.mark.parametrize(
    "case", ["good", "broken", "absolute", "escape", "missing"],
)
def test_every_command_gives_the_same_verdict_on_a_trace(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "spec"
    folder.mkdir()
    (folder / "rates.csv").write_text(GOOD if case == "good" else "0,1\n10,oops\n")
    (tmp_path / "rates.csv").write_text(GOOD)
    file = {"absolute": str(tmp_path / "rates.csv"), "escape": "../rates.csv", "missing": "nope.csv"}.get(case, "rates.csv")
    spec = write_spec(folder, file)
    codes = {}
    for command in COMMANDS:
        result = runner.invoke(app, [command[0], str(spec), *command[1:]])
        assert "Traceback" not in result.output and "internal error" not in result.output, result.output
        codes[command[0]] = result.exit_code
        if result.exit_code == 2:
            assert f"{spec}:{FILE_LINE}:{FILE_COL}:" in result.output or f"{folder / 'rates.csv'}:2:1:" in result.output
    expected = 0 if case == "good" else 2
    assert codes == {command[0]: expected for command in COMMANDS}, codes
