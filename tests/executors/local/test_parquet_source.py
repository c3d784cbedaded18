"""A Parquet file as a source: replayed in event-time order pass after pass, through real processes.

The file is written out of order on purpose; the job filters it, counts it in tumbling windows per key and
writes the result to Parquet. The expected result is one polars query over the same replay (ordinal k is
row k % rows of the sorted file, its event time shifted by k // rows spans of the file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from streamtune_cli.errors import UsageError
from streamtune_cli.executors.local.executor import LocalExecutor
from streamtune_cli.executors.local.files import ParquetReplay
from streamtune_cli.spec import load_spec

ROWS = 5_000
EVENTS = 12_500  # two and a half passes over the file

SPEC = """
name: parquet-job
workload: {rate_rps: 20000}
operators:
  - {id: src, kind: source, generator: parquet, path: events.parquet, parallelism: 2, max_parallelism: 8}
  - {id: big, kind: filter, parallelism: 2, predicate: "value > 10"}
  - id: per_key
    kind: window_aggregate
    parallelism: 3
    key: [key]
    window: {type: tumble, size_s: 2}
    aggregates: {n: "COUNT(*)", total: "SUM(value)"}
  - {id: sink, kind: sink, parallelism: 1}
edges:
  - {from: src, to: big}
  - {from: big, to: per_key, partitioning: hash, key: [key]}
  - {from: per_key, to: sink, partitioning: rebalance}
"""


def _write_file(folder: Path) -> pa.Table:
    rng = np.random.default_rng(7)
    times = rng.integers(1_700_000_000_000, 1_700_000_020_000, ROWS)  # 20 s of event time, shuffled
    table = pa.table(
        {
            "key": pa.array(rng.integers(0, 5, ROWS), pa.int64()),
            "value": pa.array(rng.integers(0, 100, ROWS), pa.int64()),
            "date_time": pa.array(times, pa.timestamp("ms")),
        }
    )
    pq.write_table(table, folder / "events.parquet", row_group_size=1_000)
    return table


def _expected(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table.sort_by("date_time"))
    ms = frame["date_time"].dt.epoch("ms")
    span = int(ms.max() - ms.min()) + 1
    k = np.arange(EVENTS)
    replay = frame[k % ROWS].with_columns(
        (pl.col("date_time").dt.epoch("ms") + pl.Series((k // ROWS) * span)).alias("t")
    )
    return (
        replay.filter(pl.col("value") > 10)
        .with_columns(((pl.col("t") // 2000) * 2000).alias("start"))
        .group_by("key", "start")
        .agg(pl.len().alias("n"), pl.col("value").sum().alias("total"))
        .select(
            "key",
            pl.from_epoch("start", time_unit="ms").alias("window_start"),
            pl.from_epoch(pl.col("start") + 2000, time_unit="ms").alias("window_end"),
            pl.col("n").cast(pl.Int64),
            "total",
        )
    )


def test_a_replayed_file_gives_one_polars_query_over_the_same_rows(tmp_path: Path) -> None:
    table = _write_file(tmp_path)
    (tmp_path / "job.yaml").write_text(SPEC)
    spec = load_spec(tmp_path / "job.yaml")
    out = tmp_path / "out"
    executor = LocalExecutor(
        sink="parquet", sink_dir=str(out), bounded_events=EVENTS, spec_dir=str(tmp_path), window_s=1.0, warmup_s=0.0
    )
    with executor:
        executor.deploy(spec, spec.parallelism)
        executor.wait_finished(timeout_s=300)
    got = pl.concat([pl.read_parquet(f) for f in sorted((out / "sink").glob("*.parquet"))])
    expected = _expected(table)
    assert expected.height > 20
    assert_frame_equal(got.sort(got.columns), expected.sort(expected.columns), check_dtypes=False)
    assert executor.stats().records_in["src"] == EVENTS


def test_replay_orders_by_event_time_and_shifts_each_pass(tmp_path: Path) -> None:
    table = _write_file(tmp_path)
    replay = ParquetReplay(tmp_path / "events.parquet")
    times = replay.event_time_ms(np.arange(3 * ROWS))
    assert (np.diff(times) >= 0).all(), "event time must never go back, across passes too"
    batch = replay.take(np.array([0, ROWS, 2 * ROWS]))
    first = pl.from_arrow(table).select(pl.col("date_time").min().dt.epoch("ms")).item()
    got = pl.from_arrow(batch)["date_time"].dt.epoch("ms").to_list()
    assert got == [first, first + replay.span, first + 2 * replay.span]


@pytest.mark.parametrize(
    "change, message",
    [
        ("path: events.parquet", "missing.parquet: no such file"),
        ("generator: parquet", "not a readable Parquet file"),
    ],
)
def test_a_bad_file_is_a_usage_error_naming_source_and_file(tmp_path: Path, change: str, message: str) -> None:
    _write_file(tmp_path)
    (tmp_path / "notes.parquet").write_text("not parquet")
    text = SPEC.replace("path: events.parquet", "path: missing.parquet" if "path" in change else "path: notes.parquet")
    (tmp_path / "job.yaml").write_text(text)
    spec = load_spec(tmp_path / "job.yaml")
    with LocalExecutor(spec_dir=str(tmp_path)) as executor, pytest.raises(UsageError) as caught:
        executor.deploy(spec, spec.parallelism)
    assert "source 'src'" in str(caught.value) and message in str(caught.value)


def test_a_missing_event_time_column_is_named(tmp_path: Path) -> None:
    _write_file(tmp_path)
    with pytest.raises(ValueError, match="event_time column 'ts' is not in the file"):
        ParquetReplay(tmp_path / "events.parquet", "ts")


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("path: events.parquet, ", "", "a parquet source needs a path"),
        ("generator: parquet, ", "", "path and event_time only apply to sources with generator: parquet"),
        ("predicate: \"value > 10\"", "predicate: \"value > 10\", path: x.parquet", "path only applies to sources"),
    ],
)
def test_spec_fields_of_a_parquet_source_are_checked(tmp_path: Path, old: str, new: str, message: str) -> None:
    from streamtune_cli.errors import SpecError

    assert old in SPEC
    (tmp_path / "job.yaml").write_text(SPEC.replace(old, new))
    with pytest.raises(SpecError, match=message):
        load_spec(tmp_path / "job.yaml")
