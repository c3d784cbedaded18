"""Hostile clusters.json files (the fuzz campaign's cases): each is refused at load with the file, the
position of the bad value and why; none reaches the GED search, and `cluster assign` exits 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.history.clusters import MAX_EDIT_COST, assign_spec, graph_problem, load_clusters
from streamtune_cli.history.store import HistoryError
from streamtune_cli.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def valid() -> dict[str, Any]:
    """A minimal clusters.json as `cluster build` writes it: one cluster whose medoid is a 3-operator chain."""
    return {
        "format": "streamtune-clusters",
        "version": 1,
        "costs": {"node_sub": 1.0, "node_del": 1.0, "node_ins": 1.0, "edge_sub": 1.0, "edge_del": 1.0, "edge_ins": 1.0},
        "clusters": [
            {
                "id": 0,
                "families": {"chain": 3},
                "medoid": {
                    "run_id": "gen-0-000001",
                    "graph": {
                        "nodes": [{"id": "a", "kind": "source"}, {"id": "b", "kind": "map"}, {"id": "c", "kind": "sink"}],
                        "edges": [{"from": "a", "to": "b", "partitioning": "forward"}, {"from": "b", "to": "c", "partitioning": "hash"}],
                    },
                },
            }
        ],
    }


def graph(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["clusters"][0]["medoid"]["graph"]


def test_the_valid_file_loads_and_assigns(tmp_path: Path) -> None:
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps(valid(), indent=1))
    model = load_clusters(path)
    result = assign_spec(load_spec(ROOT / "configs" / "nexmark" / "q1.yaml", check_sql_expressions=False), model)
    assert result["cluster"] == 0 and result["lower"] <= result["distance"] <= result["upper"]


CASES: list[tuple[str, Callable[[dict[str, Any]], Any], tuple[Any, ...], str]] = [
    ("version true", lambda d: d.update(version=True), ("version",), "clusters file version True is not supported"),
    ("version 1.0", lambda d: d.update(version=1.0), ("version",), "version 1.0 is not supported"),
    ("self-loop", lambda d: graph(d)["edges"].append({"from": "b", "to": "b", "partitioning": "forward"}), ("edges", 2), "'b' -> 'b' is a self-loop"),
    ("cycle", lambda d: graph(d)["edges"].append({"from": "c", "to": "a", "partitioning": "forward"}), ("edges",), "the edges form a cycle"),
    ("repeated edge", lambda d: graph(d)["edges"].append({"from": "a", "to": "b", "partitioning": "hash"}), ("edges", 2), "appears twice"),
    ("repeated node", lambda d: graph(d)["nodes"].append({"id": "a", "kind": "map"}), ("nodes", 3, "id"), "node id 'a' appears twice"),
    ("unknown kind", lambda d: graph(d)["nodes"][1].update(kind="teleport"), ("nodes", 1, "kind"), "unknown operator kind 'teleport'"),
    ("unknown partitioning", lambda d: graph(d)["edges"][0].update(partitioning="psychic"), ("edges", 0, "partitioning"), "unknown partitioning 'psychic'"),
    ("edge to nowhere", lambda d: graph(d)["edges"][0].update(to="zz"), ("edges", 0, "to"), "names an unknown node"),
    ("no nodes", lambda d: graph(d).update(nodes=[]), ("nodes",), "nodes must be a non-empty list"),
    ("numeric id", lambda d: graph(d)["nodes"][0].update(id=7), ("nodes", 0), "non-empty string id"),
    ("huge float cost", lambda d: d["costs"].update(node_sub=1e308), ("costs", "node_sub"), f"must be a number from 0 to {MAX_EDIT_COST:g}"),
    ("negative cost", lambda d: d["costs"].update(edge_del=-1), ("costs", "edge_del"), "must be a number from 0"),
    ("boolean cost", lambda d: d["costs"].update(edge_ins=True), ("costs", "edge_ins"), "must be a number from 0"),
    ("unknown cost", lambda d: d["costs"].update(warp=1), ("costs", "warp"), "unknown edit cost 'warp'"),
]


@pytest.mark.parametrize("name, breaker, json_path, message", CASES, ids=[c[0] for c in CASES])
def test_bad_clusters_files_are_refused_at_the_bad_value(tmp_path: Path, name: str, breaker: Any, json_path: tuple[Any, ...], message: str) -> None:
    doc = valid()
    breaker(doc)
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(HistoryError) as info:
        load_clusters(path)
    [problem] = info.value.problems
    assert problem.location.file == str(path) and problem.location.line is not None, problem
    assert message in problem.message
    # The position is the offending value's (or, for a whole-graph problem, its container's) own line.
    lines = path.read_text().splitlines()
    assert lines[problem.location.line - 1][problem.location.column - 1] in '{["-0123456789tf', problem
    result = runner.invoke(app, ["cluster", "assign", str(ROOT / "configs" / "nexmark" / "q1.yaml"), "--clusters", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert str(path) in result.output


def test_integers_with_hundreds_of_digits_in_costs_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps(valid(), indent=1).replace('"node_sub": 1.0', '"node_sub": ' + "9" * 500))
    with pytest.raises(HistoryError, match=r"clusters\.json:5:15: an integer of 500 digits \(costs\.node_sub\) is out of range"):
        load_clusters(path)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_graph_problem_names_the_value_inside_the_graph(case: Any) -> None:
    name, breaker, json_path, message = case
    doc = valid()
    breaker(doc)
    if json_path[0] in ("version", "costs"):
        assert graph_problem(graph(doc)) is None
        return
    sub, why = graph_problem(graph(doc))  # type: ignore[misc]
    assert sub == json_path and message in why
