"""`streamtune history generate | add | stats` through the CLI: output, JSON, and exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.executors.base import Trace
from streamtune_cli.history.schema import SCHEMA_VERSION, VERSION_METADATA_KEY
from streamtune_cli.history.store import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_generate_then_stats_json_agree(tmp_path: Path) -> None:
    out = tmp_path / "h"
    result = runner.invoke(app, ["history", "generate", "--jobs", "30", "--seed", "2", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    generated = json.loads(result.output)
    assert generated["runs"] == 30 and generated["size_bytes"] > 0
    result = runner.invoke(app, ["history", "stats", str(out), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["runs"] == 30
    assert stats["rows"] == generated["rows"]
    assert sum(stats["families"].values()) == 30
    assert stats["families"] == generated["families"]
    assert stats["windows"] == 30 * 6
    assert sum(entry["rows"] for entry in stats["operators_by_kind"].values()) == stats["rows"]
    assert 0 < stats["bottleneck_rate"] < 1
    assert stats["size_bytes"] == HistoryStore.open(out).size_bytes()


def test_stats_table_names_what_it_counts(tmp_path: Path) -> None:
    out = tmp_path / "h"
    assert runner.invoke(app, ["history", "generate", "-n", "8", "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["history", "stats", str(out)])
    assert result.exit_code == 0, result.output
    for text in ("runs", "windows", "bottleneck rate", "operators by kind", "size on disk", "runs by family"):
        assert text in result.output


def test_generating_the_same_seed_again_is_idempotent_and_extends(tmp_path: Path) -> None:
    """Re-running a generation keeps what is there (no duplicate runs) and adds only what is missing."""
    out = tmp_path / "h"
    assert runner.invoke(app, ["history", "generate", "-n", "3", "--out", str(out)]).exit_code == 0
    parts = HistoryStore.open(out).parts()
    result = runner.invoke(app, ["history", "generate", "-n", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runs"] == 0 and json.loads(result.output)["already_present"] == 3
    assert HistoryStore.open(out).parts() == parts  # nothing written
    result = runner.invoke(app, ["history", "generate", "-n", "5", "--out", str(out)])
    assert result.exit_code == 0 and "generated 2 runs" in result.output and "3 already present" in result.output
    assert runner.invoke(app, ["history", "generate", "-n", "3", "--seed", "1", "--out", str(out)]).exit_code == 0
    assert len(HistoryStore.open(out).run_ids()) == 8


def test_add_a_tuning_trace_and_see_it_in_stats(tmp_path: Path) -> None:
    # The trace exactly as `streamtune tune --report` writes it.
    report = tmp_path / "report"
    result = runner.invoke(app, ["tune", str(ROOT / "configs/synthetic/diamond.yaml"), "--report", str(report)])
    assert result.exit_code == 0, result.output
    path = report / "trace.json"
    trace = Trace.model_validate_json(path.read_text())
    history = tmp_path / "h"
    result = runner.invoke(app, ["history", "add", str(path), "--out", str(history)])
    assert result.exit_code == 0, result.output
    assert "added" in result.output
    # `--to`, the old name of --out, still works (hidden from --help, with a note on stderr)
    again = runner.invoke(app, ["history", "add", str(path), "--to", str(history), "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["traces"][0]["added"] is False
    assert "`history add --to` is deprecated; use --out" in again.stderr
    stats = json.loads(runner.invoke(app, ["history", "stats", str(history), "--json"]).output)
    assert stats["runs"] == 1 and stats["origins"] == {"trace": 1}
    assert stats["windows"] == len(trace.steps)
    assert stats["rows"] == sum(len(step.observation.operators) for step in trace.steps)


def test_stats_of_an_empty_history(tmp_path: Path) -> None:
    HistoryStore.create(tmp_path / "h")
    result = runner.invoke(app, ["history", "stats", str(tmp_path / "h"), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert (stats["runs"], stats["rows"], stats["bottleneck_rate"], stats["families"]) == (0, 0, None, {})


def test_bad_inputs_exit_2_and_name_the_file(tmp_path: Path) -> None:
    not_history = tmp_path / "plain"
    not_history.mkdir()
    (not_history / "x.parquet").write_bytes(b"PAR1")
    result = runner.invoke(app, ["history", "stats", str(not_history)])
    assert result.exit_code == 2
    assert f"{not_history}: not a streamtune history" in result.output
    assert "Traceback" not in result.output

    bad_trace = tmp_path / "trace.json"
    bad_trace.write_text('{"job": ')
    result = runner.invoke(app, ["history", "add", str(bad_trace), "--out", str(tmp_path / "h")])
    assert result.exit_code == 2
    assert f"{bad_trace}:1:9: invalid JSON" in result.output

    history = tmp_path / "future"
    assert runner.invoke(app, ["history", "generate", "-n", "2", "--out", str(history)]).exit_code == 0
    rows = HistoryStore.open(history).parts()[0] / "rows.parquet"
    table = pq.read_table(rows)
    meta = dict(table.schema.metadata)
    meta[VERSION_METADATA_KEY] = str(SCHEMA_VERSION + 1).encode()
    pq.write_table(table.replace_schema_metadata(meta), rows)
    result = runner.invoke(app, ["history", "stats", str(history)])
    assert result.exit_code == 2
    assert f"{rows}: history schema version {SCHEMA_VERSION + 1} is newer" in result.output

    result = runner.invoke(app, ["history", "generate", "--jobs", "0", "--out", str(tmp_path / "z")])
    assert result.exit_code == 2


def test_negative_seed_or_workers_are_usage_errors(tmp_path: Path) -> None:
    for option, value in (("--seed", "-1"), ("--workers", "-3")):
        result = runner.invoke(app, ["history", "generate", "-n", "2", option, value, "--out", str(tmp_path / "h")])
        assert result.exit_code == 2, result.output
        assert option in result.output and "greater than or equal to 0" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "h").exists()


def test_workers_are_capped_at_the_chunks_of_work_and_the_cores(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """`--workers 100000` once forked thousands of processes; now the pool gets at most min(chunks, cores)."""
    import concurrent.futures
    import os

    from streamtune_cli.history.generate import _die_with_parent

    asked: list[int] = []
    made: list[dict[str, object]] = []

    class RecordingPool(concurrent.futures.ThreadPoolExecutor):  # threads: the test forks nothing
        def __init__(self, max_workers: int, **kwargs: object) -> None:
            # The worker initializer ties a worker process to its parent (not run here: threads have none).
            asked.append(max_workers)
            made.append(kwargs)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", RecordingPool)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    # 120 runs are 3 chunks of 50, 50 and 20 runs
    result = runner.invoke(app, ["history", "generate", "-n", "120", "--workers", "100000", "--out", str(tmp_path / "h"), "--json"])
    assert result.exit_code == 0, result.output
    assert asked == [3]
    assert json.loads(result.output)["runs"] == 120
    # every worker ends with the generating process (tests/history/test_generate_crash.py kills one's parent)
    assert made == [{"initializer": _die_with_parent, "initargs": (os.getpid(),)}]


def test_capped_workers() -> None:
    import os

    from streamtune_cli.history.generate import capped_workers

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert capped_workers(100_000, 3) == min(3, cores)
    assert capped_workers(100_000, 10_000) == cores
    assert capped_workers(1, 50) == 1
    with pytest.raises(ValueError, match="workers must be >= 1"):
        capped_workers(0, 5)


def test_json_outputs_name_their_schema(tmp_path: Path) -> None:
    out = tmp_path / "h"
    generated = runner.invoke(app, ["history", "generate", "-n", "4", "--out", str(out), "--json", "-"])
    assert json.loads(generated.stdout)["schema"] == "streamtune.history-generate/1"
    stats_file = tmp_path / "stats.json"
    result = runner.invoke(app, ["history", "stats", str(out), "--json", str(stats_file)])
    assert result.exit_code == 0 and "runs by family" in result.stdout  # a file: the tables still show
    assert json.loads(stats_file.read_text())["schema"] == "streamtune.history-stats/1"
