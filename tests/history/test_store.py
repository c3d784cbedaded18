"""The history store: round trips, appends, schema-version checks, and crash safety of atomic appends."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtune_cli.errors import StreamtuneError
from streamtune_cli.history.schema import ROWS_SCHEMA, RUNS_SCHEMA, SCHEMA_VERSION, VERSION_METADATA_KEY, table_from_rows
from streamtune_cli.history.store import HistoryError, HistoryStore

ROOT = Path(__file__).resolve().parents[2]

_f32 = st.floats(min_value=0, max_value=1e9, allow_nan=False, width=32)
_fraction = st.floats(min_value=0, max_value=1, allow_nan=False, width=32)
_name = st.text("abcdefghij_", min_size=1, max_size=8)


@st.composite
def history_batch(draw: st.DrawFn, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs with ids unique to `prefix`, each with a few windows of a few operators."""
    n_runs = draw(st.integers(1, 3))
    runs, rows = [], []
    for r in range(n_runs):
        run_id = f"{prefix}-{r}"
        operators = draw(st.lists(_name, min_size=1, max_size=3, unique=True))
        n_windows = draw(st.integers(0, 3))
        runs.append(
            {
                "run_id": run_id,
                "family": draw(st.none() | _name),
                "variant": draw(st.none() | _name),
                "job": draw(_name),
                "origin": draw(st.sampled_from(["generate", "trace"])),
                "executor": "sim",
                "tuner": draw(st.none() | st.just("ds2")),
                "seed": draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
                "dag_hash": draw(st.text("0123456789abcdef", min_size=4, max_size=16)),
                "n_operators": len(operators),
                "n_edges": draw(st.integers(0, 5)),
                "n_windows": n_windows,
                "spec_json": json.dumps({"operators": operators}),
            }
        )
        for window in range(n_windows):
            for op in operators:
                rows.append(
                    {
                        "run_id": run_id,
                        "window": window,
                        "t_s": draw(_f32),
                        "window_s": draw(_f32),
                        "target_rate_rps": draw(_f32),
                        "achieved_rate_rps": draw(_f32),
                        "lag_records": draw(_f32),
                        "latency_ms": draw(st.none() | _f32),
                        "operator": op,
                        "kind": draw(st.sampled_from(["source", "map", "sink"])),
                        "parallelism": draw(st.integers(1, 512)),
                        "input_rate_rps": draw(_f32),
                        "output_rate_rps": draw(_f32),
                        "busy": draw(_fraction),
                        "busy_max": draw(_fraction),
                        "idle": draw(_fraction),
                        "backpressured": draw(_fraction),
                        "backpressured_max": draw(_fraction),
                        "true_processing_rate_rps": draw(_f32),
                        "true_output_rate_rps": draw(_f32),
                        "bottleneck": draw(st.booleans()),
                    }
                )
    return runs, rows


def _append(store: HistoryStore, runs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> Path:
    return store.append(table_from_rows("runs", runs), table_from_rows("rows", rows))


def _sorted(records: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: tuple(r[k] for k in keys))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=history_batch("r"))
def test_rows_written_then_read_back_are_equal(tmp_path_factory: pytest.TempPathFactory, batch: Any) -> None:
    runs, rows = batch
    store = HistoryStore.create(tmp_path_factory.mktemp("h") / "history")
    _append(store, runs, rows)
    # Read through polars, the query path, and compare with what was written, value for value.
    got_rows = store.scan("rows").collect().to_dicts()
    got_runs = store.scan("runs").collect().to_dicts()
    assert _sorted(got_runs, "run_id") == _sorted(runs, "run_id")
    assert _sorted(got_rows, "run_id", "window", "operator") == _sorted(rows, "run_id", "window", "operator")
    assert store.scan("rows").collect_schema().names() == ROWS_SCHEMA.names


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(0, 10**6), min_size=1, max_size=4, unique=True).flatmap(
    lambda ids: st.tuples(*[history_batch(f"b{i}") for i in ids])
))
def test_appends_from_several_writes_all_appear(tmp_path_factory: pytest.TempPathFactory, batches: Any) -> None:
    store = HistoryStore.create(tmp_path_factory.mktemp("h") / "history")
    all_runs, all_rows = [], []
    for runs, rows in batches:
        _append(store, runs, rows)
        all_runs += runs
        all_rows += rows
    assert len(store.parts()) == len(batches)
    reopened = HistoryStore.open(store.root)
    assert sorted(reopened.run_ids()) == sorted(r["run_id"] for r in all_runs)
    assert reopened.scan("rows").select(pl.len()).collect().item() == len(all_rows)
    assert _sorted(reopened.read("rows").to_pylist(), "run_id", "window", "operator") == _sorted(all_rows, "run_id", "window", "operator")


def _one_run(run_id: str = "x-1") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    runs = [
        {
            "run_id": run_id, "family": "chain", "variant": None, "job": "j", "origin": "generate", "executor": "sim",
            "tuner": None, "seed": 1, "dag_hash": "abc", "n_operators": 1, "n_edges": 0, "n_windows": 1, "spec_json": "{}",
        }
    ]
    row = {name: 0.5 for name in ROWS_SCHEMA.names}
    row.update(run_id=run_id, window=0, operator="src", kind="source", parallelism=2, bottleneck=True, latency_ms=None)
    return runs, [row]


def test_duplicate_runs_are_refused_and_orphan_rows_rejected(tmp_path: Path) -> None:
    store = HistoryStore.create(tmp_path / "h")
    _append(store, *_one_run())
    with pytest.raises(StreamtuneError, match="already in this history"):
        _append(store, *_one_run())
    runs, rows = _one_run("x-2")
    rows[0]["run_id"] = "elsewhere"
    with pytest.raises(ValueError, match="not in this append"):
        _append(store, runs, rows)
    assert store.run_ids() == {"x-1"}


def test_a_stray_temporary_part_is_ignored(tmp_path: Path) -> None:
    store = HistoryStore.create(tmp_path / "h")
    _append(store, *_one_run())
    # What a writer killed mid-write leaves behind: a temp folder with half a Parquet file.
    stray = store.parts_dir / ".tmp-deadbeef"
    stray.mkdir()
    (stray / "rows.parquet").write_bytes(b"PAR1\x00\x01 truncated")
    (store.parts_dir / ".tmp-0123-history.json").write_text("{")
    reopened = HistoryStore.open(store.root)
    assert reopened.run_ids() == {"x-1"}
    assert reopened.scan("rows").select(pl.len()).collect().item() == 1
    # and the next append still works
    _append(reopened, *_one_run("x-2"))
    assert reopened.run_ids() == {"x-1", "x-2"}


def test_a_writer_killed_mid_append_leaves_the_history_readable(tmp_path: Path) -> None:
    store = HistoryStore.create(tmp_path / "h")
    _append(store, *_one_run())
    # A child process appends, but dies (os._exit, no cleanup) right after writing the first file of the part.
    script = textwrap.dedent(
        f"""
        import os
        import pyarrow.parquet as pq
        from streamtune_cli.history import store as store_module
        from streamtune_cli.history.schema import table_from_rows
        real = pq.write_table
        def write_then_die(table, path, **kw):
            real(table, path, **kw)
            os._exit(9)
        store_module.pq.write_table = write_then_die
        import json
        runs, rows = json.loads({json.dumps(_one_run("x-dead"))!r})
        store_module.HistoryStore.open({str(store.root)!r}).append(table_from_rows("runs", runs), table_from_rows("rows", rows))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 9, result.stderr
    leftovers = [p.name for p in store.parts_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers, "the simulated crash should leave a temporary folder behind"
    reopened = HistoryStore.open(store.root)
    assert reopened.run_ids() == {"x-1"}
    assert reopened.scan("rows").select(pl.len()).collect().item() == 1


def _rewrite_with_version(path: Path, version: int) -> None:
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[VERSION_METADATA_KEY] = str(version).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.integers(SCHEMA_VERSION + 1, 10**9), table=st.sampled_from(["runs", "rows"]))
def test_a_part_from_a_future_schema_version_is_a_clear_error(
    tmp_path_factory: pytest.TempPathFactory, version: int, table: str
) -> None:
    store = HistoryStore.create(tmp_path_factory.mktemp("h") / "h")
    part = _append(store, *_one_run())
    _rewrite_with_version(part / f"{table}.parquet", version)
    with pytest.raises(HistoryError) as info:
        HistoryStore.open(store.root).scan(table)
    message = str(info.value)
    assert message.startswith(f"{part / f'{table}.parquet'}: ")
    assert f"version {version} is newer" in message
    assert info.value.exit_code == 2
    # the other table, still at the current version, reads fine
    other = "rows" if table == "runs" else "runs"
    assert HistoryStore.open(store.root).scan(other).collect().height == 1


def test_a_future_manifest_version_is_a_clear_error(tmp_path: Path) -> None:
    store = HistoryStore.create(tmp_path / "h")
    manifest = store.root / "history.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = SCHEMA_VERSION + 5
    manifest.write_text(json.dumps(data))
    with pytest.raises(HistoryError, match=r"history\.json: history schema version 6 is newer"):
        HistoryStore.open(store.root)


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda p: None, "no such history folder"),
        (lambda p: p.write_text("x"), "is not a folder"),
        (lambda p: (p.mkdir(), (p / "data.parquet").write_bytes(b"x")), "not a streamtune history"),
        (lambda p: (p.mkdir(), (p / "history.json").write_text("{")), r"history\.json:1:2: invalid JSON"),
        (lambda p: (p.mkdir(), (p / "history.json").write_text("[" * 100_000)), "history manifest is nested too deeply"),
        (lambda p: (p.mkdir(), (p / "history.json").write_text('{"format": "other"}')), "not a streamtune history manifest"),
    ],
)
def test_not_a_history_is_a_clear_error(tmp_path: Path, setup: Any, expected: str) -> None:
    path = tmp_path / "h"
    setup(path)
    with pytest.raises(HistoryError, match=expected) as info:
        HistoryStore.open(path)
    assert str(path) in str(info.value)


def test_a_part_with_wrong_columns_or_garbage_is_named(tmp_path: Path) -> None:
    store = HistoryStore.create(tmp_path / "h")
    part = _append(store, *_one_run())
    table = pq.read_table(part / "runs.parquet")
    pq.write_table(table.drop_columns(["dag_hash"]).replace_schema_metadata(table.schema.metadata), part / "runs.parquet")
    with pytest.raises(HistoryError, match=r"runs\.parquet: columns do not match.*dag_hash \(missing\)"):
        HistoryStore.open(store.root).scan("runs")
    (part / "rows.parquet").write_bytes(b"not parquet")
    with pytest.raises(HistoryError, match=r"rows\.parquet: not a readable Parquet file"):
        HistoryStore.open(store.root).read("rows")


def test_create_refuses_a_non_empty_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HistoryError, match="not empty"):
        HistoryStore.create(tmp_path)


def test_empty_history_scans_to_empty_frames_with_the_schema(tmp_path: Path) -> None:
    store = HistoryStore.create(tmp_path / "h")
    assert store.scan("rows").collect().height == 0
    assert store.scan("runs").collect_schema().names() == RUNS_SCHEMA.names
    assert store.read("rows").schema.equals(ROWS_SCHEMA)
    assert isinstance(store.read("runs"), pa.Table)
