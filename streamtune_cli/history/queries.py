"""Queries over a history with polars: summary statistics and the distinct job DAGs with the runs that share them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import ValidationError

from streamtune_cli.errors import SpecError
from streamtune_cli.history.records import labeled_graph_from_spec
from streamtune_cli.history.store import HistoryError, HistoryStore
from streamtune_cli.definitions import RATE_TOLERANCE

__all__ = ["history_stats", "DagGroup", "dag_groups"]


def history_stats(store: HistoryStore | str | Path) -> dict[str, Any]:
    """Runs, windows, rows, families, operators by kind, bottleneck rates and size on disk, as plain data."""
    import polars as pl

    store = store if isinstance(store, HistoryStore) else HistoryStore.open(store)
    with store.reading():
        return _stats(store)


def _stats(store: HistoryStore) -> dict[str, Any]:
    import polars as pl

    runs = store.scan("runs")
    rows = store.scan("rows")
    run_summary = runs.select(
        pl.len().alias("runs"),
        pl.col("n_windows").sum().alias("windows"),
        pl.col("dag_hash").n_unique().alias("distinct_dags"),
    ).collect()
    row_summary = rows.select(pl.len().alias("rows"), pl.col("bottleneck").mean().alias("bottleneck_rate")).collect()
    per_window = (
        rows.group_by("run_id", "window")
        .agg(
            pl.col("bottleneck").any().alias("has_bottleneck"),
            # Observation.backpressured (definitions.keeps_up): the sources ingested less than the target.
            (pl.col("achieved_rate_rps") < (1 - RATE_TOLERANCE) * pl.col("target_rate_rps")).first().alias("throttled"),
        )
        .select(pl.col("has_bottleneck").mean(), pl.col("throttled").mean())
        .collect()
    )
    families = (
        runs.group_by(pl.col("family").fill_null("(none)")).agg(pl.len().alias("runs")).sort("family").collect()
    )
    origins = runs.group_by("origin").agg(pl.len().alias("runs")).sort("origin").collect()
    kinds = (
        rows.group_by("kind")
        .agg(
            pl.struct("run_id", "operator").n_unique().alias("operators"),
            pl.len().alias("rows"),
            pl.col("bottleneck").mean().alias("bottleneck_rate"),
        )
        .sort("kind")
        .collect()
    )
    n_runs = int(run_summary["runs"][0])
    n_rows = int(row_summary["rows"][0])

    def rate(value: Any) -> float | None:
        return None if value is None else round(float(value), 4)

    return {
        "history": str(store.root),
        "parts": len(store.parts()),
        "runs": n_runs,
        "windows": int(run_summary["windows"][0] or 0),
        "rows": n_rows,
        "distinct_dags": int(run_summary["distinct_dags"][0]),
        "families": {str(r["family"]): int(r["runs"]) for r in families.iter_rows(named=True)},
        "origins": {str(r["origin"]): int(r["runs"]) for r in origins.iter_rows(named=True)},
        "operators_by_kind": {
            str(r["kind"]): {"operators": int(r["operators"]), "rows": int(r["rows"]), "bottleneck_rate": rate(r["bottleneck_rate"])}
            for r in kinds.iter_rows(named=True)
        },
        "bottleneck_rate": rate(row_summary["bottleneck_rate"][0]) if n_rows else None,
        "windows_with_bottleneck": rate(per_window["has_bottleneck"][0]) if n_rows else None,
        "windows_throttled": rate(per_window["throttled"][0]) if n_rows else None,
        "size_bytes": store.size_bytes(),
    }


def _stored_graph(store: HistoryStore, run_id: Any, spec_json: Any) -> nx.DiGraph:
    """A run's labeled DAG from its stored spec; a null, non-JSON or invalid spec is a HistoryError naming the part."""
    try:
        if not isinstance(spec_json, str):
            raise ValueError("spec_json is null" if spec_json is None else f"spec_json is a {type(spec_json).__name__}, not text")
        try:
            data = json.loads(spec_json)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"spec_json is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError("spec_json is not a JSON object")
        try:
            return labeled_graph_from_spec(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(top level)"
            raise ValueError(f"spec_json is not a valid job spec ({where}: {first['msg'][:120]})") from None
        except (SpecError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"spec_json is not a valid job spec ({' '.join(str(exc).split())[:160]})") from None
    except ValueError as exc:
        where = store.part_file_of(str(run_id)) or store.root
        raise HistoryError(where, f"run {run_id!r}: {exc}; this part was not written by streamtune or is damaged") from None


@dataclass
class DagGroup:
    """Runs that share one DAG structure (same canonical hash), with one labeled graph for all of them."""

    dag_hash: str
    graph: nx.DiGraph
    run_ids: list[str] = field(default_factory=list)
    families: list[str | None] = field(default_factory=list)
    representative: str = ""


def dag_groups(store: HistoryStore | str | Path) -> list[DagGroup]:
    """Distinct DAGs of a history, in order of first appearance; only one spec per DAG is parsed."""
    import polars as pl

    store = store if isinstance(store, HistoryStore) else HistoryStore.open(store)
    with store.reading():
        runs = store.scan("runs").select("run_id", "family", "dag_hash").collect()
        firsts = (
            store.scan("runs")
            .with_row_index("order")
            .group_by("dag_hash")
            .agg(pl.col("order").first(), pl.col("run_id").first(), pl.col("spec_json").first())
            .sort("order")
            .collect()
        )
    groups = {
        r["dag_hash"]: DagGroup(r["dag_hash"], _stored_graph(store, r["run_id"], r["spec_json"]), representative=r["run_id"])
        for r in firsts.iter_rows(named=True)
    }
    for run_id, family, dag_hash in runs.iter_rows():
        group = groups[dag_hash]
        group.run_ids.append(run_id)
        group.families.append(family)
    return list(groups.values())
