"""The public surface of streamtune_cli.history is exactly the intended names."""

from __future__ import annotations

import streamtune_cli.history as history


def test_exported_members() -> None:
    assert sorted(history.__all__) == sorted(
        [
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
    )
    assert all(hasattr(history, name) for name in history.__all__)
