"""Clustering a history by GED: families recovered (ARI), dedup, medoids, assignment, clusters.json checks, CLI."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.errors import UsageError
from streamtune_cli.ged import DEFAULT_PAIR_MAX_EXPANSIONS, same_labeled_graph
from streamtune_cli.history.clusters import assign_spec, build_clusters, graph_from_json, graph_to_json, load_clusters
from streamtune_cli.history.generate import generate_history
from streamtune_cli.history.records import labeled_graph_from_spec_json
from streamtune_cli.history.store import HistoryError, HistoryStore
from streamtune_cli.history.templates import FAMILIES, draw_spec
from streamtune_cli.spec import dump_spec

runner = CliRunner()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cluster") / "h"
    generate_history(out, jobs=140, seed=21, workers=1)
    return out


@pytest.fixture(scope="module")
def clusters(history: Path) -> dict:
    return build_clusters(history, n_jobs=1)


def _runs(history: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in HistoryStore.open(history).read("runs").to_pylist()}


def test_clusters_recover_the_generator_families(history: Path, clusters: dict) -> None:
    runs = _runs(history)
    # Independent of the builder's own ARI: membership as written in clusters.json vs families in the history.
    predicted = {run_id: c["id"] for c in clusters["clusters"] for run_id in c["run_ids"]}
    assert sorted(predicted) == sorted(runs)
    ids = sorted(runs)
    ari = adjusted_rand_score([runs[i]["family"] for i in ids], [predicted[i] for i in ids])
    assert ari >= 0.9
    assert clusters["adjusted_rand_index_vs_family"] == pytest.approx(ari, abs=1e-6)
    assert clusters["k_chosen_by"] == "silhouette"
    assert clusters["k"] == len(FAMILIES)


def test_identical_dags_are_one_point_and_distinct_dags_are_not_merged(history: Path, clusters: dict) -> None:
    runs = _runs(history)
    graphs = {}
    for run in runs.values():
        graphs.setdefault(run["dag_hash"], labeled_graph_from_spec_json(run["spec_json"]))
    assert clusters["n_dags"] == len(graphs)
    reps = list(graphs.values())
    for i in range(len(reps)):
        for j in range(i + 1, len(reps)):
            assert not same_labeled_graph(reps[i], reps[j])
    # runs that share a hash really share the DAG (spot check every run against its group's graph)
    for run in list(runs.values())[:60]:
        assert same_labeled_graph(labeled_graph_from_spec_json(run["spec_json"]), graphs[run["dag_hash"]])
    assert sum(c["n_dags"] for c in clusters["clusters"]) == clusters["n_dags"]
    assert clusters["distances"]["pairs"] == len(graphs) * (len(graphs) - 1) // 2


def test_medoids_are_member_dags_stored_as_graph_json(history: Path, clusters: dict) -> None:
    runs = _runs(history)
    for cluster in clusters["clusters"]:
        medoid = cluster["medoid"]
        assert medoid["run_id"] in cluster["run_ids"]
        assert medoid["dag_hash"] in cluster["dag_hashes"]
        stored = graph_from_json(medoid["graph"], "test")
        assert same_labeled_graph(stored, labeled_graph_from_spec_json(runs[medoid["run_id"]]["spec_json"]))
        counted = Counter(runs[r]["family"] for r in cluster["run_ids"])
        assert cluster["families"] == dict(counted)
        assert cluster["n_runs"] == len(cluster["run_ids"])


def test_graph_json_round_trip() -> None:
    graph = nx.DiGraph()
    graph.add_node("a", kind="source")
    graph.add_node("b", kind="sink")
    graph.add_edge("a", "b", partitioning="hash")
    back = graph_from_json(json.loads(json.dumps(graph_to_json(graph))), "x")
    assert nx.utils.graphs_equal(graph, back)


def test_a_fixed_k_and_determinism(history: Path, clusters: dict) -> None:
    three = build_clusters(history, k=3, n_jobs=1)
    assert three["k"] == 3 and three["k_chosen_by"] == "given"
    assert len({run for c in three["clusters"] for run in c["run_ids"]}) == 140
    assert build_clusters(history, n_jobs=2) == clusters
    with pytest.raises(UsageError, match="distinct DAG"):
        build_clusters(history, k=10_000, n_jobs=1)


def test_the_search_budget_is_recorded_and_the_clock_is_never_read(
    history: Path, clusters: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert clusters["distances"]["max_expansions"] == DEFAULT_PAIR_MAX_EXPANSIONS
    # Every clock reading leaps an hour ahead, as on an impossibly slow machine: any wall-clock limit
    # would cut every search short. A budget counts work, so the document is the same.
    now = [1e9]

    def runaway() -> float:
        now[0] += 3600.0
        return now[0]

    for name in ("perf_counter", "monotonic", "time", "process_time"):
        monkeypatch.setattr(time, name, runaway)
    assert build_clusters(history, n_jobs=1) == clusters
    # A budget too small to prove anything beyond the bounds is deterministic too, and honest about it.
    tiny = build_clusters(history, n_jobs=1, max_expansions=0)
    monkeypatch.undo()
    assert tiny == build_clusters(history, n_jobs=1, max_expansions=0)
    assert tiny["distances"]["max_expansions"] == 0
    assert tiny["distances"]["exact"] <= clusters["distances"]["exact"]
    with pytest.raises(UsageError, match="max-expansions"):
        build_clusters(history, n_jobs=1, max_expansions=-1)


def test_new_jobs_of_each_family_are_assigned_to_that_family(tmp_path: Path, clusters: dict) -> None:
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps(clusters))
    model = load_clusters(path)
    for family in FAMILIES:
        for i in range(3):
            spec, _ = draw_spec(family, np.random.default_rng([999, i]))
            result = assign_spec(spec, model)
            cluster = next(c for c in clusters["clusters"] if c["id"] == result["cluster"])
            assert max(cluster["families"], key=cluster["families"].get) == family.name
            assert result["lower"] <= result["distance"] <= result["upper"]
            # the chosen medoid is at least as near as every other medoid can possibly be
            assert all(result["distance"] <= c["lower"] + 1e-9 for c in result["candidates"] if c["cluster"] != result["cluster"])


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{", r"clusters\.json:1:2: invalid JSON"),
        ('{"format": "other"}', r"clusters\.json: not a clusters file"),
        ("[" * 100_000, r"clusters\.json: clusters file is nested too deeply"),
        ('{"format": "streamtune-clusters", "version": 1, "clusters": [{"families": "abc", "medoid": {"graph": {"nodes": [], "edges": []}}}]}',
         r"clusters\.json:1:75: clusters\[0\]\.families must map family names to run counts"),
        ('{"format": "streamtune-clusters", "version": 99, "clusters": []}', r"clusters file version 99 is not supported"),
        ('{"format": "streamtune-clusters", "version": 1, "clusters": [{"medoid": {"graph": {"nodes": []}}}]}',
         r"clusters\.json:1:93: clusters\[0\]\.medoid\.graph\.nodes: malformed medoid graph: nodes must be a non-empty list"),
    ],
)
def test_bad_clusters_files_are_named(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "clusters.json"
    path.write_text(content)
    with pytest.raises(HistoryError, match=expected):
        load_clusters(path)


def test_cli_cluster_shorthand_build_and_assign(tmp_path: Path, history: Path, clusters: dict) -> None:
    short = tmp_path / "short.json"
    result = runner.invoke(app, ["cluster", str(history), "--out", str(short), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "clusters of 140 runs" in result.output
    explicit = tmp_path / "explicit.json"
    result = runner.invoke(app, ["cluster", "build", str(history), "--out", str(explicit), "--json", "--seed", "0"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["k"] == clusters["k"] and summary["n_runs"] == 140
    assert json.loads(short.read_text()) == json.loads(explicit.read_text()) == clusters

    spec, _ = draw_spec(FAMILIES[0], np.random.default_rng(5))
    job = tmp_path / "job.yaml"
    job.write_text(dump_spec(spec))
    result = runner.invoke(app, ["cluster", "assign", str(job), "--clusters", str(short), "--json"])
    assert result.exit_code == 0, result.output
    assigned = json.loads(result.output)
    assert assigned["job"] == spec.name and isinstance(assigned["exact"], bool)
    result = runner.invoke(app, ["cluster", "assign", str(job), "--clusters", str(short)])
    assert result.exit_code == 0 and "graph edit distance" in result.output
    result = runner.invoke(app, ["cluster", "assign", str(job), "--clusters", str(short), "--max-expansions", "0", "--json"])
    assert result.exit_code == 0, result.output
    bounded = json.loads(result.output)
    assert bounded["lower"] <= assigned["distance"] <= bounded["upper"]


def test_cli_cluster_max_expansions(tmp_path: Path, history: Path, clusters: dict) -> None:
    out = tmp_path / "budget.json"
    result = runner.invoke(app, ["cluster", str(history), "--out", str(out), "--workers", "1", "--max-expansions", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["distances"]["max_expansions"] == 3
    assert json.loads(out.read_text())["distances"]["max_expansions"] == 3
    result = runner.invoke(app, ["cluster", "build", str(history), "--out", str(out), "--max-expansions", "-1"])
    assert result.exit_code == 2 and "--max-expansions" in result.output
    result = runner.invoke(app, ["cluster", "build", "--help"])
    assert "--max-expansions" in result.output and "--time-limit" not in result.output


def test_cli_cluster_bad_input_exits_2(tmp_path: Path, history: Path) -> None:
    empty = tmp_path / "not-a-history"
    empty.mkdir()
    result = runner.invoke(app, ["cluster", str(empty), "--out", str(tmp_path / "c.json")])
    assert result.exit_code == 2 and f"{empty}: not a streamtune history" in result.output
    result = runner.invoke(app, ["cluster", "build", str(history), "--k", "lots"])
    assert result.exit_code == 2 and "--k must be 'auto' or a positive integer" in result.output
    spec, _ = draw_spec(FAMILIES[1], np.random.default_rng(1))
    job = tmp_path / "job.yaml"
    job.write_text(dump_spec(spec))
    bad = tmp_path / "c.json"
    bad.write_text("[]")
    result = runner.invoke(app, ["cluster", "assign", str(job), "--clusters", str(bad)])
    assert result.exit_code == 2 and f"{bad}: not a clusters file" in result.output
    assert "Traceback" not in result.output
