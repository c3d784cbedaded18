"""Operator and edge features a real deployment exposes, built from a job's blinded view and one window.

Only what a Flink cluster shows goes in: the operator's kind, parallelism and max parallelism, where it sits
in the DAG, how its inputs are partitioned, and the load measured at decision time (per-instance input
rate, observed selectivity, busy / idle / backpressured fractions). The spec's cost hints, declared
selectivity, scaling and skew never do: the features are computed from a JobView, which does not hold them.
This module needs numpy only; the torch side (gnn.model) turns GraphSamples into tensors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from streamtune_cli.spec.models import OperatorKind, Partitioning
from streamtune_cli.tuning.view import JobView

__all__ = [
    "FEATURE_SCHEMA_VERSION",
    "NODE_FEATURES",
    "EDGE_FEATURES",
    "GraphStructure",
    "GraphSample",
    "graph_structure",
    "node_features",
    "samples_from_history",
    "tabular",
    "ability_exponent",
    "MIN_BUSY_FOR_ABILITY",
]

# Below this busy fraction the measured ability (rate / busy) amplifies noise too much to be used.
MIN_BUSY_FOR_ABILITY = 0.2

FEATURE_SCHEMA_VERSION = 1

_KINDS = tuple(OperatorKind)
# The four partitionings the shipped encoders were trained with; the two later ones are read as their
# nearest kin (rescale is a round robin, global concentrates the input like a single key), so features keep
# their width and pretrained models stay valid.
_PARTITIONINGS = (Partitioning.forward, Partitioning.hash, Partitioning.rebalance, Partitioning.broadcast)
_AS_FEATURE = {Partitioning.rescale: Partitioning.rebalance, Partitioning.global_: Partitioning.hash}
NODE_FEATURES: tuple[str, ...] = (
    *(f"kind={k.value}" for k in _KINDS),
    "log_parallelism",
    "log_max_parallelism",
    "depth",  # longest path from a source, / the DAG's longest path
    "log_fan_in",
    "log_fan_out",
    *(f"input={p.value}" for p in _PARTITIONINGS),
    "log_input_rate_per_instance",
    "log_observed_selectivity",
    "busy",
    "busy_max",
    "idle",
    "backpressured",
    "backpressured_max",
)
# Messages flow both ways (a bottleneck depends on its upstream's backpressure and its downstream's
# saturation): every DAG edge appears twice, tagged with its direction.
EDGE_FEATURES: tuple[str, ...] = (*(f"partitioning={p.value}" for p in _PARTITIONINGS), "downstream", "upstream")

# Rates span 1 to 1e7 records/s: log1p(rate) / 16 keeps them in about [0, 1].
_LOG_RATE_SCALE = 16.0
_LOG_COUNT_SCALE = math.log1p(32768)


@dataclass(frozen=True)
class GraphStructure:
    """The rate-independent part: operator order, static node features, edges in both directions."""

    operators: tuple[str, ...]
    static: np.ndarray  # (n, number of static features) float32
    edge_index: np.ndarray  # (2, 2E) int64
    edge_attr: np.ndarray  # (2E, len(EDGE_FEATURES)) float32


@dataclass(frozen=True)
class GraphSample:
    """One measured window of one job as a graph: features, edges and the bottleneck label per operator."""

    run_id: str
    window: int
    family: str | None
    operators: tuple[str, ...]
    x: np.ndarray  # (n, len(NODE_FEATURES)) float32
    edge_index: np.ndarray
    edge_attr: np.ndarray
    y: np.ndarray  # (n,) float32: 1.0 for a bottleneck
    # (n,) float32: the operator's scaling exponent over its run (ability_exponent), NaN when unknown
    delta: np.ndarray | None = None


def graph_structure(view: JobView) -> GraphStructure:
    order = tuple(view.topological_order)
    index = {op: i for i, op in enumerate(order)}
    depth: dict[str, int] = {}
    for op in order:
        depth[op] = max((depth[u] + 1 for u in view.upstream(op)), default=0)
    longest = max(depth.values(), default=0) or 1
    static = np.zeros((len(order), len(_KINDS) + 5 + len(_PARTITIONINGS)), dtype=np.float32)
    for i, op_id in enumerate(order):
        op = view.operator(op_id)
        row = static[i]
        row[_KINDS.index(op.kind)] = 1.0
        base = len(_KINDS)
        row[base + 1] = math.log1p(op.max_parallelism) / _LOG_COUNT_SCALE
        row[base + 2] = depth[op_id] / longest
        row[base + 3] = math.log1p(len(view.upstream(op_id))) / math.log1p(16)
        row[base + 4] = math.log1p(len(view.downstream(op_id))) / math.log1p(16)
        for edge in view.in_edges(op_id):
            row[base + 5 + _PARTITIONINGS.index(_AS_FEATURE.get(edge.partitioning, edge.partitioning))] = 1.0
    sources, targets, attrs = [], [], []
    for op_id in order:
        for edge in view.out_edges(op_id):
            one_hot = [1.0 if _AS_FEATURE.get(edge.partitioning, edge.partitioning) == p else 0.0 for p in _PARTITIONINGS]
            sources += [index[edge.src], index[edge.dst]]
            targets += [index[edge.dst], index[edge.src]]
            attrs += [one_hot + [1.0, 0.0], one_hot + [0.0, 1.0]]
    edge_index = np.array([sources, targets], dtype=np.int64).reshape(2, -1)
    edge_attr = np.array(attrs, dtype=np.float32).reshape(-1, len(EDGE_FEATURES))
    return GraphStructure(order, static, edge_index, edge_attr)


def node_features(structure: GraphStructure, metrics: Mapping[str, Any]) -> np.ndarray:
    """Static features plus one window's measurements, in NODE_FEATURES order.

    `metrics` maps each operator to an object with the _METRIC_COLUMNS attributes: an OperatorMetrics of
    an Observation, or a history row.
    """
    n = len(structure.operators)
    x = np.zeros((n, len(NODE_FEATURES)), dtype=np.float32)
    n_static = structure.static.shape[1]
    # Static block, with log_parallelism (measured at decision time) filled in below.
    x[:, : len(_KINDS)] = structure.static[:, : len(_KINDS)]
    x[:, len(_KINDS) + 1 : n_static] = structure.static[:, len(_KINDS) + 1 :]
    for i, op in enumerate(structure.operators):
        m = metrics[op]
        p = max(1, int(m.parallelism))
        x[i, len(_KINDS)] = math.log1p(p) / _LOG_COUNT_SCALE
        per_instance = max(0.0, float(m.input_rate_rps)) / p
        x[i, n_static] = math.log1p(per_instance) / _LOG_RATE_SCALE
        selectivity = float(m.output_rate_rps) / float(m.input_rate_rps) if m.input_rate_rps > 0 else 0.0
        x[i, n_static + 1] = math.log1p(min(max(selectivity, 0.0), 1e3)) / math.log1p(1e3)
        x[i, n_static + 2 :] = [m.busy, m.busy_max, m.idle, m.backpressured, m.backpressured_max]
    return x


@dataclass(frozen=True)
class _Row:
    """One history row's measurements (the attributes node_features reads)."""

    parallelism: int
    input_rate_rps: float
    output_rate_rps: float
    busy: float
    busy_max: float
    idle: float
    backpressured: float
    backpressured_max: float


_METRIC_COLUMNS = ("parallelism", "input_rate_rps", "output_rate_rps", "busy", "busy_max", "idle", "backpressured", "backpressured_max")


def samples_from_history(history: str | Path, run_ids: Iterable[str] | None = None) -> list[GraphSample]:
    """Every (run, window) of a history as a GraphSample; the DAG comes from each run's stored spec, read
    through a JobView, so hidden spec fields cannot reach a feature."""
    import polars as pl

    from streamtune_cli.history.store import HistoryStore
    from streamtune_cli.spec.models import JobSpec

    store = HistoryStore.open(history)
    runs = store.scan("runs").select("run_id", "family", "spec_json")
    rows = store.scan("rows").select("run_id", "window", "operator", "bottleneck", *_METRIC_COLUMNS)
    if run_ids is not None:
        wanted = sorted(set(run_ids))
        runs = runs.filter(pl.col("run_id").is_in(wanted))
        rows = rows.filter(pl.col("run_id").is_in(wanted))
    with store.reading():  # a damaged part is named, not a Rust panic from deep inside polars
        runs_df = runs.collect().sort("run_id")
        rows_df = rows.collect().sort("run_id", "window", "operator")
    structures: dict[str, tuple[GraphStructure, str | None]] = {}
    for run_id, family, spec_json in runs_df.iter_rows():
        view = JobView.from_spec(JobSpec.model_validate(json.loads(spec_json)))
        structures[run_id] = (graph_structure(view), family)
    samples: list[GraphSample] = []
    columns = rows_df.columns
    data = {c: rows_df[c].to_list() for c in columns}
    # Per run and operator: the scaling exponent over the run's windows (each window is one parallelism).
    ability_points: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for i in range(rows_df.height):
        p, busy_max, rate = data["parallelism"][i], data["busy_max"][i], data["input_rate_rps"][i]
        if busy_max >= MIN_BUSY_FOR_ABILITY and rate > 0 and p >= 1:
            ability_points.setdefault((data["run_id"][i], data["operator"][i]), []).append((p, rate / busy_max / p))
    exponents = {key: ability_exponent(points) for key, points in ability_points.items()}
    start = 0
    total = rows_df.height
    while start < total:
        run_id, window = data["run_id"][start], data["window"][start]
        end = start
        while end < total and data["run_id"][end] == run_id and data["window"][end] == window:
            end += 1
        if run_id in structures:
            structure, family = structures[run_id]
            metrics = {
                data["operator"][i]: _Row(*(data[c][i] for c in _METRIC_COLUMNS)) for i in range(start, end)
            }
            labels = {data["operator"][i]: bool(data["bottleneck"][i]) for i in range(start, end)}
            if set(metrics) == set(structure.operators):
                samples.append(
                    GraphSample(
                        run_id=run_id,
                        window=int(window),
                        family=family,
                        operators=structure.operators,
                        x=node_features(structure, metrics),
                        edge_index=structure.edge_index,
                        edge_attr=structure.edge_attr,
                        y=np.array([1.0 if labels[op] else 0.0 for op in structure.operators], dtype=np.float32),
                        delta=np.array(
                            [
                                math.nan if exponents.get((run_id, op)) is None else exponents[(run_id, op)]
                                for op in structure.operators
                            ],
                            dtype=np.float32,
                        ),
                    )
                )
        start = end
    return samples


def ability_exponent(points: Iterable[tuple[int, float]]) -> float | None:
    """How fast one instance's processing ability falls as instances are added: delta in a(p) ~ p^-delta.

    `points` are (parallelism, per-instance ability) measurements of one operator, ability being
    input rate / busiest instance's busy fraction / parallelism (what a deployment measures). Least squares
    of log a on log p over the distinct parallelisms (mean ability per parallelism), clipped to [0, 1]:
    0 is linear scaling, 1 is no gain at all from more instances. None with fewer than two parallelisms.
    """
    by_p: dict[int, list[float]] = {}
    for p, a in points:
        if p >= 1 and a > 0 and math.isfinite(a):
            by_p.setdefault(int(p), []).append(math.log(a))
    if len(by_p) < 2:
        return None
    xs = np.log(np.array(sorted(by_p), dtype=float))
    ys = np.array([float(np.mean(by_p[p])) for p in sorted(by_p)])
    slope = float(np.polyfit(xs, ys, 1)[0])
    return min(1.0, max(0.0, -slope))


def tabular(samples: list[GraphSample]) -> tuple[np.ndarray, np.ndarray]:
    """Per-operator rows for a non-graph model: (X, y), the same node features without message passing."""
    if not samples:
        return np.zeros((0, len(NODE_FEATURES)), dtype=np.float32), np.zeros(0, dtype=np.float32)
    return np.concatenate([s.x for s in samples]), np.concatenate([s.y for s in samples])


def describe() -> dict[str, Any]:
    """The feature schema as stored in model metadata: loading a model checks it is this one."""
    return {"version": FEATURE_SCHEMA_VERSION, "node": list(NODE_FEATURES), "edge": list(EDGE_FEATURES)}
