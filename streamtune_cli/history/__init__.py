"""Execution histories: a versioned Parquet store of measured windows, the synthetic generator, importers, queries."""

from streamtune_cli.history.labels import BACKPRESSURE_THRESHOLD, BUSY_THRESHOLD, bottleneck_labels
from streamtune_cli.history.records import RunsBuilder, dag_hash, labeled_graph_from_spec_json
from streamtune_cli.history.schema import ROWS_SCHEMA, RUNS_SCHEMA, SCHEMA_VERSION, table_from_rows
from streamtune_cli.history.store import HistoryError, HistoryStore

__all__ = [
    "BACKPRESSURE_THRESHOLD",
    "BUSY_THRESHOLD",
    "HistoryError",
    "HistoryStore",
    "ROWS_SCHEMA",
    "RUNS_SCHEMA",
    "RunsBuilder",
    "SCHEMA_VERSION",
    "bottleneck_labels",
    "dag_hash",
    "labeled_graph_from_spec_json",
    "table_from_rows",
]
