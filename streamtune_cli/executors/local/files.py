"""A Parquet file as a source: its rows replayed in event-time order, pass after pass.

Ordinal k of the source's stream is row `k % rows` of the (sorted) file in pass `k // rows`; each pass
shifts the event-time column by the file's span (last - first + 1 ms), so event time keeps rising and
windows keep closing however long the job runs. A row is a pure function of its ordinal, as a Nexmark event
is, so splits, offsets, rescales and watermarks work exactly as for the generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ParquetReplay", "parquet_schema", "DEFAULT_TIME_FIELD"]

DEFAULT_TIME_FIELD = "date_time"


def _read(path: str | Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, memory_map=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None


def _time_field(schema: pa.Schema, requested: str | None, path: str | Path) -> str | None:
    if requested is None:
        return DEFAULT_TIME_FIELD if DEFAULT_TIME_FIELD in schema.names else None
    if requested not in schema.names:
        raise ValueError(f"{path}: event_time column {requested!r} is not in the file (columns: {', '.join(schema.names)})")
    kind = schema.field(requested).type
    if not (pa.types.is_timestamp(kind) or pa.types.is_integer(kind)):
        raise ValueError(f"{path}: event_time column {requested!r} must be a timestamp or an integer of ms, not {kind}")
    return requested


def parquet_schema(path: str | Path, time_field: str | None = None) -> pa.Schema:
    """The schema a Parquet source emits (the file's), after checking the file and its event-time column."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None
    _time_field(schema, time_field, path)
    return schema


class ParquetReplay:
    """The rows of one Parquet file, sorted by event time, addressed by ordinal (see the module docstring)."""

    def __init__(self, path: str | Path, time_field: str | None = None):
        table = _read(path)
        if table.num_rows == 0:
            raise ValueError(f"{path}: the file has no rows")
        self.time_field = _time_field(table.schema, time_field, path)
        self._native: np.ndarray | None = None
        self.span = 0  # one pass's shift, in the event-time column's own unit
        if self.time_field is not None:
            column = table.column(self.time_field)
            if column.null_count:
                raise ValueError(f"{path}: event_time column {self.time_field!r} has {column.null_count} null values")
            table = table.sort_by(self.time_field)
            self._native = table.column(self.time_field).cast(pa.int64()).to_numpy()
            self.span = int(self._native[-1] - self._native[0]) + 1
            self._kind = table.schema.field(self.time_field).type
        self.table = table.combine_chunks()
        self.rows = table.num_rows
        self.schema = table.schema

    def take(self, ordinals: np.ndarray) -> pa.RecordBatch:
        k = np.asarray(ordinals, dtype=np.int64)
        rows, passes = k % self.rows, k // self.rows
        taken = self.table.take(pa.array(rows))
        if self.time_field is not None and passes.size and passes.max() > 0:
            index = self.schema.get_field_index(self.time_field)
            column = taken.column(index)
            shifted = pc.add(column.cast(pa.int64()), pa.array(passes * self.span, type=pa.int64())).cast(column.type)
            taken = taken.set_column(index, self.schema.field(index), shifted)
        batches = taken.combine_chunks().to_batches()
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=self.schema)

    def event_time_ms(self, ordinals: np.ndarray) -> np.ndarray:
        """Event time (ms) of ordinals, non-decreasing in the ordinal; raises without an event-time column."""
        if self._native is None:
            raise ValueError("this file has no event-time column")
        k = np.asarray(ordinals, dtype=np.int64)
        return _to_ms(self._native[k % self.rows] + (k // self.rows) * self.span, self._kind)


def _to_ms(values: np.ndarray, kind: pa.DataType) -> np.ndarray:
    """Native event-time values as ms (an integer column already is ms); floor keeps the order."""
    if pa.types.is_timestamp(kind):
        if kind.unit == "s":
            return values * 1000
        return values // {"ms": 1, "us": 1000, "ns": 1_000_000}[kind.unit]
    return values
