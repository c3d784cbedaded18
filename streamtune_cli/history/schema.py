"""The versioned Parquet schema of an execution history: a runs table (one row per run, the job DAG stored once)
and a rows table (one row per run, window and operator). docs/history.md documents every column."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = [
    "SCHEMA_VERSION",
    "VERSION_METADATA_KEY",
    "TABLE_METADATA_KEY",
    "RUNS_SCHEMA",
    "ROWS_SCHEMA",
    "RUNS_COLUMNS",
    "ROWS_COLUMNS",
    "schema_for",
    "table_from_rows",
]

SCHEMA_VERSION = 1
# Stored in every Parquet file's key-value metadata, so each part can be checked on its own.
VERSION_METADATA_KEY = b"streamtune.history.schema_version"
TABLE_METADATA_KEY = b"streamtune.history.table"

# Metrics are float32: they are measurements with a few percent of noise, and float32's 7 significant digits
# halve the store's size (noisy mantissas do not compress) without losing anything that was measured.
_F32 = pa.float32()

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("family", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("job", pa.string(), nullable=False),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("executor", pa.string(), nullable=False),
        pa.field("tuner", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("dag_hash", pa.string(), nullable=False),
        pa.field("n_operators", pa.int32(), nullable=False),
        pa.field("n_edges", pa.int32(), nullable=False),
        pa.field("n_windows", pa.int32(), nullable=False),
        pa.field("spec_json", pa.string(), nullable=False),
    ]
)

ROWS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("window", pa.int32(), nullable=False),
        pa.field("t_s", _F32, nullable=False),
        pa.field("window_s", _F32, nullable=False),
        pa.field("target_rate_rps", _F32, nullable=False),
        pa.field("achieved_rate_rps", _F32, nullable=False),
        pa.field("lag_records", _F32, nullable=False),
        pa.field("latency_ms", _F32),
        pa.field("operator", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("parallelism", pa.int32(), nullable=False),
        pa.field("input_rate_rps", _F32, nullable=False),
        pa.field("output_rate_rps", _F32, nullable=False),
        pa.field("busy", _F32, nullable=False),
        pa.field("busy_max", _F32, nullable=False),
        pa.field("idle", _F32, nullable=False),
        pa.field("backpressured", _F32, nullable=False),
        pa.field("backpressured_max", _F32, nullable=False),
        pa.field("true_processing_rate_rps", _F32, nullable=False),
        pa.field("true_output_rate_rps", _F32, nullable=False),
        pa.field("bottleneck", pa.bool_(), nullable=False),
    ]
)

RUNS_COLUMNS = tuple(RUNS_SCHEMA.names)
ROWS_COLUMNS = tuple(ROWS_SCHEMA.names)


def schema_for(table: str) -> pa.Schema:
    """The schema of `runs` or `rows`, with the version metadata every written file carries."""
    base = {"runs": RUNS_SCHEMA, "rows": ROWS_SCHEMA}[table]
    return base.with_metadata({VERSION_METADATA_KEY: str(SCHEMA_VERSION).encode(), TABLE_METADATA_KEY: table.encode()})


def table_from_rows(table: str, rows: list[dict[str, Any]] | dict[str, list[Any]]) -> pa.Table:
    """An Arrow table of `runs` or `rows` from row dicts or columns; a missing column or wrong type raises."""
    schema = schema_for(table)
    if isinstance(rows, dict):
        missing = [name for name in schema.names if name not in rows]
        if missing:
            raise ValueError(f"{table} columns missing: {missing}")
        return pa.Table.from_pydict({name: rows[name] for name in schema.names}, schema=schema)
    return pa.Table.from_pylist(rows, schema=schema)
