"""Turns runs (a job spec and its measured windows) into the history's `runs` and `rows` tables, column by column."""

from __future__ import annotations

import json
from typing import Any, Iterable

import networkx as nx
import pyarrow as pa

from streamtune_cli.executors.base import Observation
from streamtune_cli.history.labels import bottleneck_labels
from streamtune_cli.history.schema import ROWS_COLUMNS, RUNS_COLUMNS, table_from_rows
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.loader import spec_to_data
from streamtune_cli.spec.models import JobSpec

__all__ = ["RunsBuilder", "dag_hash", "labeled_graph_from_spec", "labeled_graph_from_spec_json"]


def _structure_key(graph: nx.DiGraph) -> tuple[Any, ...]:
    return (
        tuple(sorted((str(n), d["kind"]) for n, d in graph.nodes(data=True))),
        tuple(sorted((str(u), str(v), d["partitioning"]) for u, v, d in graph.edges(data=True))),
    )


_HASH_CACHE: dict[tuple[Any, ...], str] = {}
# Columns copied as they are from the Observation (per window) and its OperatorMetrics (per operator).
_WINDOW_FIELDS = ("t_s", "window_s", "target_rate_rps", "achieved_rate_rps", "lag_records", "latency_ms")
_OPERATOR_FIELDS = (
    "parallelism",
    "input_rate_rps",
    "output_rate_rps",
    "busy",
    "busy_max",
    "idle",
    "backpressured",
    "backpressured_max",
    "true_processing_rate_rps",
    "true_output_rate_rps",
)


def dag_hash(labeled: nx.DiGraph) -> str:
    """The canonical hash of a labeled DAG (streamtune_cli.ged.canonical_hash): equal for isomorphic DAGs.

    Memoized on the exact (ids, labels) structure, because generated runs of one template repeat it.
    """
    key = _structure_key(labeled)
    found = _HASH_CACHE.get(key)
    if found is None:
        from streamtune_cli.ged import canonical_hash

        found = _HASH_CACHE[key] = canonical_hash(labeled)
        if len(_HASH_CACHE) > 100_000:
            _HASH_CACHE.clear()
    return found


def labeled_graph_from_spec(data: dict[str, Any]) -> nx.DiGraph:
    """The labeled DAG (node `kind`, edge `partitioning`) of a run, from its stored spec (parsed JSON)."""
    return JobGraph(JobSpec.model_validate(data)).labeled()


def labeled_graph_from_spec_json(spec_json: str) -> nx.DiGraph:
    """labeled_graph_from_spec from the stored spec's JSON text."""
    return labeled_graph_from_spec(json.loads(spec_json))


class RunsBuilder:
    """Accumulates runs; `tables()` returns the Arrow `runs` and `rows` tables ready for HistoryStore.append."""

    def __init__(self) -> None:
        self._runs: dict[str, list[Any]] = {c: [] for c in RUNS_COLUMNS}
        self._rows: dict[str, list[Any]] = {c: [] for c in ROWS_COLUMNS}

    def __len__(self) -> int:
        return len(self._runs["run_id"])

    @property
    def n_rows(self) -> int:
        return len(self._rows["run_id"])

    def add_run(
        self,
        run_id: str,
        spec: JobSpec,
        windows: Iterable[Observation],
        *,
        origin: str,
        executor: str,
        family: str | None = None,
        variant: str | None = None,
        tuner: str | None = None,
        seed: int | None = None,
        graph: JobGraph | None = None,
    ) -> None:
        """Add one run: its spec once, and one row per (window, operator) with the operator's bottleneck label."""
        graph = graph or JobGraph(spec)
        labeled = graph.labeled()
        kinds = {op.id: op.kind.value for op in spec.operators}
        rows = self._rows
        n_windows = 0
        for window, obs in enumerate(windows):
            n_windows += 1
            labels = bottleneck_labels(graph.nx, obs.operators)
            for op_id, m in obs.operators.items():
                rows["run_id"].append(run_id)
                rows["window"].append(window)
                for name in _WINDOW_FIELDS:
                    rows[name].append(getattr(obs, name))
                rows["operator"].append(op_id)
                # An operator the spec does not name (e.g. a Flink chain vertex) keeps an honest "unknown" kind.
                rows["kind"].append(kinds.get(op_id, "unknown"))
                for name in _OPERATOR_FIELDS:
                    rows[name].append(getattr(m, name))
                rows["bottleneck"].append(labels[op_id])
        runs = self._runs
        runs["run_id"].append(run_id)
        runs["family"].append(family)
        runs["variant"].append(variant)
        runs["job"].append(spec.name)
        runs["origin"].append(origin)
        runs["executor"].append(executor)
        runs["tuner"].append(tuner)
        runs["seed"].append(seed)
        runs["dag_hash"].append(dag_hash(labeled))
        runs["n_operators"].append(len(spec.operators))
        runs["n_edges"].append(len(spec.edges))
        runs["n_windows"].append(n_windows)
        runs["spec_json"].append(json.dumps(spec_to_data(spec), separators=(",", ":")))

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return table_from_rows("runs", self._runs), table_from_rows("rows", self._rows)

    def clear(self) -> None:
        for column in (*self._runs.values(), *self._rows.values()):
            column.clear()
