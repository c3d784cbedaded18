"""Damaged histories and hostile traces (the fuzz campaign's cases): one clear error naming the part file
or the trace's file:line:col, exit 2, never a traceback, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.history.generate import generate_history
from streamtune_cli.history.store import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    out = tmp_path / "h"
    generate_history(out, jobs=6, seed=1, workers=1, runs_per_part=3)
    assert len(HistoryStore.open(out).parts()) == 2
    return out


def garble_pages(path: Path) -> None:
    """Flip bytes between the header magic and the footer: the footer (schema, metadata) still reads."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(4, len(data) - footer):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    pq.read_schema(path)  # still a valid footer: the damage shows only when pages are decoded


def rewrite_spec_json(path: Path, value: Any) -> None:
    """The same runs part with its first run's spec_json replaced (as a foreign writer could store it)."""
    table = pq.read_table(path)
    index = table.schema.get_field_index("spec_json")
    column = pa.array([value] + table.column(index).to_pylist()[1:], pa.string())
    schema = table.schema.set(index, pa.field("spec_json", pa.string(), nullable=True))
    pq.write_table(pa.Table.from_arrays([column if i == index else table.column(i) for i in range(table.num_columns)], schema=schema), path)


def cli(*args: Any) -> Any:
    return runner.invoke(app, [*map(str, args)])


def error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.parametrize("table", ["rows", "runs"])
def test_garbled_pages_behind_a_valid_footer_name_the_part(history: Path, table: str) -> None:
    part = HistoryStore.open(history).parts()[1] / f"{table}.parquet"
    garble_pages(part)
    line = error_line(cli("history", "stats", history))
    assert line.startswith(f"error: {part}: corrupt Parquet data (")
    if table == "runs":  # clustering reads only the runs table
        line = error_line(cli("cluster", "build", history, "--out", history.parent / "c.json", "--workers", "1"))
        assert line.startswith(f"error: {part}: corrupt Parquet data (")
        assert not (history.parent / "c.json").exists()


@pytest.mark.parametrize("value, message", [(None, "spec_json is null"), ("{not json", "spec_json is not JSON"), ("[1, 2]", "spec_json is not a JSON object"), ('{"name": "x"}', "spec_json is not a valid job spec (workload: Field required")])
def test_a_runs_part_with_a_bad_spec_json_names_the_part_and_run(history: Path, value: str | None, message: str) -> None:
    part = HistoryStore.open(history).parts()[0] / "runs.parquet"
    rewrite_spec_json(part, value)
    line = error_line(cli("cluster", "build", history, "--out", history.parent / "c.json", "--workers", "1"))
    assert line.startswith(f"error: {part}: run 'gen-1-000000': {message}")


# --- history add: hostile traces --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trace_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    report = tmp_path_factory.mktemp("tune") / "report"
    result = runner.invoke(app, ["tune", str(ROOT / "configs" / "nexmark" / "q1.yaml"), "--report", str(report)])
    assert result.exit_code in (0, 1), result.output
    return (report / "trace.json").read_text()


def first_operator(data: dict[str, Any]) -> dict[str, Any]:
    operators = data["steps"][0]["observation"]["operators"]
    return operators[next(iter(operators))]


def add_ghost(mapping: dict[str, Any], value: Any) -> None:
    mapping["ghost"] = value


TRACE_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    ("string format_version", lambda d: d.update(format_version="1"), '"format_version": "1"', 'format_version must be a whole number (this streamtune reads up to 1), not "1"'),
    ("boolean format_version", lambda d: d.update(format_version=True), '"format_version": true', "format_version must be a whole number"),
    ("float format_version", lambda d: d.update(format_version=1.0), '"format_version": 1.0', "format_version must be a whole number"),
    ("parallelism 10^30", lambda d: first_operator(d).update(parallelism=10**30), "1" + "0" * 30, "an integer of 31 digits (steps.0.observation.operators.bids.parallelism) is out of range"),
    ("parallelism 10^6", lambda d: first_operator(d).update(parallelism=10**6), '"parallelism": 1000000', "steps.0.observation.operators.bids.parallelism: Input should be less than or equal to"),
    ("unknown observed operator", lambda d: add_ghost(d["steps"][0]["observation"]["operators"], {**first_operator(d), "operator": "ghost"}), '"ghost": {', "steps.0.observation.operators names operators the job spec does not have: 'ghost'"),
    ("unknown deployed operator", lambda d: add_ghost(d["steps"][1]["parallelism"], 3), '"ghost": 3', "steps.1.parallelism names operators the job spec does not have: 'ghost'"),
]


@pytest.mark.parametrize("name, breaker, anchor, message", TRACE_CASES, ids=[c[0] for c in TRACE_CASES])
def test_history_add_refuses_a_hostile_trace_at_its_position(tmp_path: Path, trace_text: str, name: str, breaker: Any, anchor: str, message: str) -> None:
    data = json.loads(trace_text)
    breaker(data)
    path = tmp_path / "trace.json"
    text = json.dumps(data, indent=2)
    path.write_text(text)
    line = error_line(cli("history", "add", path, "--out", tmp_path / "h"))
    # the position is where the offending value starts in the file (after its key, where the anchor has one)
    offset = text.index(anchor) + (anchor.index(": ") + 2 if anchor.startswith('"') else 0)
    row = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    assert line.startswith(f"error: {path}:{row}:{col}: "), line
    assert message in line
    assert not (tmp_path / "h").exists() or not HistoryStore.open(tmp_path / "h").run_ids()


def test_history_add_out_and_its_old_name(tmp_path: Path, trace_text: str) -> None:
    path = tmp_path / "trace.json"
    path.write_text(trace_text)
    assert cli("history", "add", path, "--out", tmp_path / "a").exit_code == 0
    assert len(HistoryStore.open(tmp_path / "a").run_ids()) == 1
    line = error_line(cli("history", "add", path, "--out", tmp_path / "a", "--to", tmp_path / "b"))
    assert "--to is the old name of --out" in line
    help_text = cli("history", "add", "--help").output
    assert "--out" in help_text and "--to" not in help_text


def test_a_trace_may_name_its_schema_and_a_summary_is_not_a_trace(tmp_path: Path, trace_text: str) -> None:
    plain = tmp_path / "trace.json"
    plain.write_text(trace_text)
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"schema": "streamtune.trace/1", **json.loads(trace_text)}))
    assert cli("history", "add", named, "--out", tmp_path / "h").exit_code == 0
    again = cli("history", "add", plain, "--out", tmp_path / "h")  # the same trace: the schema is not content
    assert again.exit_code == 0 and "skipped" in again.output
    summary = tmp_path / "summary.json"
    summary.write_text('{\n  "schema": "streamtune.tune-summary/1", "job": "q1"}')
    line = error_line(cli("history", "add", summary, "--out", tmp_path / "h"))
    assert line.startswith(f"error: {summary}:2:13: not a tuning trace: its schema is \"streamtune.tune-summary/1\"")
