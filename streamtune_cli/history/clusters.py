"""Clusters of a history's jobs by graph edit distance of their DAGs, as a self-contained clusters.json.

Identical DAGs (same canonical hash) are computed once; the distance matrix, the clustering and the
medoids come from streamtune_cli.ged; this module loads the history, weighs DAGs by their runs, writes the
result (medoid DAGs as labeled-graph JSON, so assignment needs no history) and assigns new jobs.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import networkx as nx
import numpy as np

from streamtune_cli.ged.budget import DEFAULT_MAX_EXPANSIONS, DEFAULT_PAIR_MAX_EXPANSIONS, check_max_expansions
from streamtune_cli.history.queries import DagGroup, dag_groups
from streamtune_cli.history.store import HistoryError, HistoryStore, read_json
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec

__all__ = [
    "CLUSTERS_FORMAT",
    "CLUSTERS_VERSION",
    "graph_to_json",
    "graph_from_json",
    "build_clusters",
    "load_clusters",
    "assign_graph",
    "assign_spec",
    "ClusterModel",
    "MAX_EDIT_COST",
    "graph_problem",
]

CLUSTERS_FORMAT = "streamtune-clusters"
CLUSTERS_VERSION = 1


def graph_to_json(graph: nx.DiGraph) -> dict[str, Any]:
    """A labeled DAG as plain data: nodes with `kind`, edges with `partitioning`, sorted for stable output."""
    return {
        "nodes": [{"id": str(n), "kind": graph.nodes[n]["kind"]} for n in sorted(graph.nodes, key=str)],
        "edges": [
            {"from": str(u), "to": str(v), "partitioning": d["partitioning"]}
            for u, v, d in sorted(graph.edges(data=True), key=lambda e: (str(e[0]), str(e[1])))
        ],
    }


def graph_problem(data: Any) -> tuple[tuple[Any, ...], str] | None:
    """Why `data` is not a medoid DAG as graph_to_json writes it, with the JSON path (inside the graph) of the
    offending value; None when it is one. Node kinds and partitionings must be the spec's, ids unique, every
    edge between two known nodes, no self-loop, no repeated edge and no cycle: a medoid is a job's DAG."""
    from streamtune_cli.spec.models import OperatorKind, Partitioning

    if not isinstance(data, dict):
        return (), "must be an object with nodes and edges"
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list) or not nodes:
        return ("nodes",) if "nodes" in data else (), "nodes must be a non-empty list"
    if not isinstance(edges, list):
        return ("edges",) if "edges" in data else (), "edges must be a list"
    kinds = {k.value for k in OperatorKind}
    partitionings = {p.value for p in Partitioning}
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not node["id"]:
            return ("nodes", i), "a node must be an object with a non-empty string id"
        if node.get("kind") not in kinds:
            return ("nodes", i, "kind"), f"unknown operator kind {str(node.get('kind'))[:40]!r} (one of {', '.join(sorted(kinds))})"
        if node["id"] in seen:
            return ("nodes", i, "id"), f"node id {node['id'][:40]!r} appears twice"
        seen.add(node["id"])
    pairs: set[tuple[str, str]] = set()
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict) or not isinstance(edge.get("from"), str) or not isinstance(edge.get("to"), str):
            return ("edges", i), "an edge must be an object with string from and to"
        src, dst = edge["from"], edge["to"]
        for end in ("from", "to"):
            if edge[end] not in seen:
                return ("edges", i, end), f"edge {src[:40]!r} -> {dst[:40]!r} names an unknown node"
        if src == dst:
            return ("edges", i), f"edge {src[:40]!r} -> {dst[:40]!r} is a self-loop; a job's DAG has none"
        if (src, dst) in pairs:
            return ("edges", i), f"edge {src[:40]!r} -> {dst[:40]!r} appears twice"
        pairs.add((src, dst))
        if edge.get("partitioning") not in partitionings:
            return ("edges", i, "partitioning"), f"unknown partitioning {str(edge.get('partitioning'))[:40]!r} (one of {', '.join(sorted(partitionings))})"
    graph = nx.DiGraph(list(pairs))
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(u[:40] for u, _ in nx.find_cycle(graph))
        return ("edges",), f"the edges form a cycle ({cycle} -> ...); a job's graph is a DAG"
    return None


def graph_from_json(data: Any, where: str) -> nx.DiGraph:
    """The inverse of graph_to_json; a malformed graph (see graph_problem) raises an error naming `where`."""
    problem = graph_problem(data)
    if problem is not None:
        sub, message = problem
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in sub)
        raise HistoryError(where, f"malformed medoid graph{(' at ' + at.lstrip('.')) if at else ''}: {message}")
    graph = nx.DiGraph()
    for node in data["nodes"]:
        graph.add_node(node["id"], kind=node["kind"])
    for edge in data["edges"]:
        graph.add_edge(edge["from"], edge["to"], partitioning=edge["partitioning"])
    return graph


# Edit costs in clusters.json: non-negative and at most this, so sums over thousands of edits stay exact
# floats (a cost of 1e308 would overflow to infinity in the search and in the bounds).
MAX_EDIT_COST = 1e6


def _costs_to_json(costs: Any) -> dict[str, float]:
    return {name: float(value) for name, value in dataclasses.asdict(costs).items()}


def build_clusters(
    history: str | Path | HistoryStore,
    *,
    k: int | str = "auto",
    seed: int = 0,
    costs: Any = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    groups: list[DagGroup] | None = None,
    max_expansions: int = DEFAULT_PAIR_MAX_EXPANSIONS,
) -> dict[str, Any]:
    """Cluster a history's runs by the GED of their DAGs; returns the clusters.json document.

    Runs are grouped by their stored canonical DAG hash, so each distinct DAG is one point: the distance
    matrix covers distinct DAGs only (in parallel, `n_jobs` processes) and duplicates do not weigh on the
    clustering. k is chosen by silhouette unless given. The adjusted Rand index between clusters and
    generator families is reported over the runs that have a family. Each exact GED search may expand at
    most `max_expansions` branch-and-bound nodes (a count of work, not seconds: the document depends only
    on the history and the options, never on the machine's speed or load); the budget is recorded.
    """
    from streamtune_cli.errors import UsageError
    from streamtune_cli.ged import EditCosts, cluster_distance_matrix, distance_matrix

    budget = _search_budget(max_expansions)
    costs = costs or EditCosts()
    store = history if isinstance(history, HistoryStore) else HistoryStore.open(history)
    groups = groups if groups is not None else dag_groups(store)
    if not groups:
        raise HistoryError(store.root, "the history has no runs to cluster")
    if isinstance(k, int) and not 1 <= k <= len(groups):
        raise UsageError(f"--k {k} is not possible: {store.root} has {len(groups)} distinct DAG(s)")
    matrix = distance_matrix([g.graph for g in groups], costs, n_jobs=n_jobs, progress=progress, max_expansions=budget)
    if matrix.n_unique != len(groups):
        # Two stored hashes for one structure would mean runs written with another hash function.
        raise HistoryError(store.root, "runs with different DAG hashes have identical DAGs; the history mixes hash versions")
    clustering = cluster_distance_matrix(matrix, k=k, seed=seed)
    labels = [int(label) for label in clustering.labels]

    clusters = []
    for cluster_id in range(clustering.k):
        members = [i for i, label in enumerate(labels) if label == cluster_id]
        medoid = groups[int(clustering.medoids[cluster_id])]
        families = Counter(f if f is not None else "(none)" for i in members for f in groups[i].families)
        clusters.append(
            {
                "id": cluster_id,
                "n_runs": sum(len(groups[i].run_ids) for i in members),
                "n_dags": len(members),
                "families": dict(sorted(families.items(), key=lambda kv: (-kv[1], kv[0]))),
                "medoid": {
                    "dag_hash": medoid.dag_hash,
                    "run_id": medoid.representative,
                    "family": medoid.families[0],
                    "graph": graph_to_json(medoid.graph),
                },
                "dag_hashes": [groups[i].dag_hash for i in members],
                "run_ids": [run_id for i in members for run_id in groups[i].run_ids],
            }
        )

    upper_pairs = matrix.unique_exact[np.triu_indices(matrix.n_unique, 1)]
    gaps = (matrix.unique_upper - matrix.unique_lower)[np.triu_indices(matrix.n_unique, 1)]
    return {
        "format": CLUSTERS_FORMAT,
        "version": CLUSTERS_VERSION,
        "history": str(store.root),
        "seed": seed,
        "costs": _costs_to_json(costs),
        "n_runs": sum(len(g.run_ids) for g in groups),
        "n_dags": len(groups),
        "k": clustering.k,
        "k_chosen_by": "silhouette" if k == "auto" else "given",
        "silhouette": _finite_or_none(clustering.silhouette),
        "silhouette_by_k": {str(kk): _finite_or_none(s) for kk, s in clustering.scores.items()},
        "adjusted_rand_index_vs_family": _family_ari(groups, labels),
        "distances": {
            "pairs": int(upper_pairs.size),
            "exact": int(upper_pairs.sum()),
            "max_gap": float(gaps.max()) if gaps.size else 0.0,
            "max_expansions": budget,
        },
        "clusters": clusters,
    }


def _search_budget(max_expansions: int) -> int:
    """The exact search's budget as an int >= 0; an unbounded search (None) has no worst-case running time."""
    from streamtune_cli.errors import UsageError

    try:
        budget = check_max_expansions(max_expansions)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--max-expansions: {exc}") from None
    if budget is None:
        raise UsageError("--max-expansions must be an integer >= 0")
    return budget


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def _family_ari(groups: list[DagGroup], labels: list[int]) -> float | None:
    """Adjusted Rand index of cluster vs family over runs with a family; None if fewer than two families."""
    from sklearn.metrics import adjusted_rand_score

    truth, predicted = [], []
    for group, label in zip(groups, labels):
        for family in group.families:
            if family is not None:
                truth.append(family)
                predicted.append(label)
    if len(set(truth)) < 2:
        return None
    return round(float(adjusted_rand_score(truth, predicted)), 6)


class ClusterModel:
    """A loaded clusters.json: the medoid graph and summary of each cluster, and the edit costs used."""

    def __init__(self, path: Path, data: dict[str, Any], medoids: list[nx.DiGraph], costs: Any):
        self.path = path
        self.data = data
        self.clusters: list[dict[str, Any]] = data["clusters"]
        self.medoids = medoids
        self.costs = costs


def load_clusters(path: str | Path) -> ClusterModel:
    """Read and check a clusters.json; every problem names the file, and the position of the bad value."""
    from streamtune_cli.errors import Problem
    from streamtune_cli.ged import EditCosts
    from streamtune_cli.io import locate_json_path

    path = Path(path)
    data = read_json(path, "clusters file")

    def fail(json_path: tuple[Any, ...], message: str) -> HistoryError:
        return HistoryError.from_problems([Problem(locate_json_path(path, json_path), message)])

    if not isinstance(data, dict) or data.get("format") != CLUSTERS_FORMAT:
        raise HistoryError(path, f"not a clusters file (expected format {CLUSTERS_FORMAT!r}; build one with `streamtune cluster build`)")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > CLUSTERS_VERSION or version < 1:
        raise fail(("version",), f"clusters file version {str(version)[:40]} is not supported (this streamtune reads {CLUSTERS_VERSION})")
    clusters = data.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        raise fail(("clusters",), "clusters file has no clusters")
    medoids = []
    for i, cluster in enumerate(clusters):
        if not isinstance(cluster, dict) or not isinstance(cluster.get("medoid"), dict):
            raise fail(("clusters", i), f"clusters[{i}] has no medoid")
        families = cluster.get("families", {})
        if not isinstance(families, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in families.values()
        ):
            raise fail(("clusters", i, "families"), f"clusters[{i}].families must map family names to run counts")
        graph = cluster["medoid"].get("graph")
        problem = graph_problem(graph)
        if problem is not None:
            sub, message = problem
            at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in sub)
            raise fail(("clusters", i, "medoid", "graph", *sub), f"clusters[{i}].medoid.graph{at}: malformed medoid graph: {message}")
        medoids.append(graph_from_json(graph, f"{path}: clusters[{i}].medoid.graph"))
    costs_data = data.get("costs", {})
    if not isinstance(costs_data, dict):
        raise fail(("costs",), "costs must be an object of edit costs")
    known = {f.name for f in dataclasses.fields(EditCosts)}
    for name, value in costs_data.items():
        if name not in known:
            raise fail(("costs", name), f"unknown edit cost {name[:40]!r} (known: {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= MAX_EDIT_COST:
            raise fail(("costs", name), f"edit cost {name} must be a number from 0 to {MAX_EDIT_COST:g}, not {str(value)[:40]}")
    costs = EditCosts(**{name: float(value) for name, value in costs_data.items()})
    return ClusterModel(path, data, medoids, costs)


def assign_graph(graph: nx.DiGraph, model: ClusterModel, max_expansions: int = DEFAULT_MAX_EXPANSIONS) -> dict[str, Any]:
    """The nearest cluster medoid of a labeled DAG, with the distance's bounds and whether it is exact.

    Exact searches may expand at most `max_expansions` branch-and-bound nodes each (deterministic)."""
    from streamtune_cli.ged import assign_to_medoid, bounded_ged, graph_edit_distance

    budget = _search_budget(max_expansions)
    index, distance = assign_to_medoid(graph, model.medoids, model.costs, max_expansions=budget)
    result = graph_edit_distance(graph, model.medoids[index], model.costs, max_expansions=budget)
    cluster = model.clusters[index]
    candidates = []
    for i, medoid in enumerate(model.medoids):
        bounds = result if i == index else bounded_ged(graph, medoid, model.costs)
        candidates.append({"cluster": model.clusters[i].get("id", i), "lower": bounds.lower, "upper": bounds.upper})
    return {
        "cluster": cluster.get("id", index),
        "distance": float(min(distance, result.upper)),
        "exact": bool(result.exact),
        "lower": float(result.lower),
        "upper": float(result.upper),
        "medoid_run_id": cluster["medoid"].get("run_id"),
        "families": cluster.get("families", {}),
        "candidates": candidates,
    }


def assign_spec(spec: JobSpec, model: ClusterModel, max_expansions: int = DEFAULT_MAX_EXPANSIONS) -> dict[str, Any]:
    """assign_graph for a job spec's DAG (node kind, edge partitioning)."""
    return assign_graph(JobGraph(spec).labeled(), model, max_expansions)
