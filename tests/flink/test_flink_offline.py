"""Flink pieces that need no cluster: vertex names read back, the importer on REST answers recorded from a
real Flink 2.3.0 cluster (tests/flink/data/), and the REST client's retries and errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from streamtune_cli.errors import ExecutorError
from streamtune_cli.flink.importer import spec_from_rest, vertex_mapping
from streamtune_cli.flink.names import operator_id, parse_vertex_name
from streamtune_cli.flink.rest import FlinkHttpError, FlinkRest
from streamtune_cli.fusion.flink_rules import flink_chains
from streamtune_cli.spec import JobGraph, load_spec_text
from streamtune_cli.spec import JobSpec
from streamtune_cli.testing.strategies import job_spec_data

DATA = Path(__file__).resolve().parent / "data"
RECORDED = sorted(DATA.glob("*.json"))


def test_vertex_names_parse_into_operators_and_chained_edges() -> None:
    name = parse_vertex_name("Join[5] [Source: a[1], Source: b[2]] -> Calc[6] -> (x[7]: Writer, Calc[8] -> y[9]: Writer)")
    assert name.operators == ("Source: a[1]", "Source: b[2]", "Join[5]", "Calc[6]", "x[7]: Writer", "Calc[8]", "y[9]: Writer")
    assert set(name.edges) == {
        ("Source: a[1]", "Join[5]"), ("Source: b[2]", "Join[5]"), ("Join[5]", "Calc[6]"),
        ("Calc[6]", "x[7]: Writer"), ("Calc[6]", "Calc[8]"), ("Calc[8]", "y[9]: Writer"),
    }
    assert name.chained_sources == ("Source: a[1]", "Source: b[2]")


def test_repeated_names_in_one_vertex_keep_their_own_edges() -> None:
    # DataStream jobs often chain operators of the same name (`Map -> Map`): positions, not names, link them.
    name = parse_vertex_name("Source: s -> Map -> Map -> Sink: out")
    assert sorted(name.links) == [(0, 1), (1, 2), (2, 3)]
    data = spec_from_rest(
        {"name": "maps", "vertices": [{"id": "v", "name": "Source: s -> Map -> Map -> Sink: out", "parallelism": 1}]},
        {"nodes": [{"id": "v"}]},
        rate_rps=10.0,
    )
    assert sorted((e["from"], e["to"]) for e in data["edges"]) == [("map", "map_2"), ("map_2", "out"), ("s", "map")]


@given(job_spec_data())
def test_reading_back_the_names_fuse_gives_recovers_every_chain(data: dict) -> None:
    # flink_chain_name and parse_vertex_name are inverses on every chain of a generated spec.
    graph = JobGraph(JobSpec.model_validate(data))
    for chain in flink_chains(graph):
        parsed = parse_vertex_name(chain.name)
        from streamtune_cli.fusion.flink_rules import flink_operator_name

        assert sorted(parsed.operators) == sorted(flink_operator_name(graph, m) for m in chain.members)
        named = {(flink_operator_name(graph, a), flink_operator_name(graph, b)) for a, b in chain.internal_edges}
        assert set(parsed.edges) == named


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8))
def test_operator_ids_are_valid_and_unique(names: list[str]) -> None:
    import re

    taken: set[str] = set()
    ids = [operator_id(n, taken) for n in names]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", i) for i in ids)


@pytest.mark.parametrize("recorded", RECORDED, ids=[p.stem for p in RECORDED])
def test_recorded_jobs_import_to_specs_whose_flink_chains_are_flinks_vertices(recorded: Path) -> None:
    answers = json.loads(recorded.read_text())
    data = spec_from_rest(answers["job"], answers["plan"]["plan"], rate_rps=20_000.0)
    spec = load_spec_text(yaml.safe_dump(data, sort_keys=False), recorded.stem + ".yaml")
    ours = sorted(chain.name for chain in flink_chains(JobGraph(spec)))
    theirs = sorted(v["name"] for v in answers["job"]["vertices"])
    assert ours == theirs
    mapping = vertex_mapping(answers["job"])
    assert set(mapping) == {op.id for op in spec.operators}
    for v in answers["job"]["vertices"]:
        members = [op for op, vertex in mapping.items() if vertex == v["id"]]
        assert all(spec.operator(m).parallelism == v["parallelism"] for m in members)


def test_a_writer_behind_an_unchained_source_marks_the_source_legacy() -> None:
    job = {
        "jid": "j",
        "name": "q1",
        "vertices": [
            {"id": "a", "name": "Source: bid[1] -> Calc[2]", "parallelism": 2, "maxParallelism": 128},
            {"id": "b", "name": "out[3]: Writer", "parallelism": 2, "maxParallelism": 128},
        ],
    }
    plan = {"nodes": [{"id": "a", "description": ""}, {"id": "b", "description": "", "inputs": [{"id": "a", "ship_strategy": "FORWARD", "exchange": "pipelined_bounded"}]}]}
    data = spec_from_rest(job, plan, rate_rps=100.0)
    ops = {op["id"]: op for op in data["operators"]}
    assert ops["bid_1"]["legacy_source"] is True and ops["out_3_writer"]["sink_writer"] is True
    assert ops["out_3_writer"]["name"] == "out[3]"


def test_forward_edges_that_never_chain_mean_chaining_is_off() -> None:
    job = {
        "name": "unchained",
        "vertices": [
            {"id": "a", "name": "Source: bid[1]", "parallelism": 2},
            {"id": "b", "name": "Calc[2]", "parallelism": 2},
            {"id": "c", "name": "out[3]: Writer", "parallelism": 2},
        ],
    }
    plan = {
        "nodes": [
            {"id": "a"},
            {"id": "b", "inputs": [{"id": "a", "ship_strategy": "FORWARD"}]},
            {"id": "c", "inputs": [{"id": "b", "ship_strategy": "FORWARD"}]},
        ]
    }
    data = spec_from_rest(job, plan, rate_rps=100.0)
    assert data["chaining_enabled"] is False


# -- the REST client ------------------------------------------------------------------------------


def _client(handler, attempts: int = 3) -> FlinkRest:  # type: ignore[no-untyped-def]
    rest = FlinkRest("http://flink.test", attempts=attempts, backoff_s=0.0)
    rest._client = httpx.Client(base_url=rest.url, transport=httpx.MockTransport(handler))
    return rest


def test_5xx_answers_are_retried_then_succeed() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            return httpx.Response(503, json={"errors": ["busy"]})
        return httpx.Response(200, json={"taskmanagers": 1})

    assert _client(handler).overview() == {"taskmanagers": 1}
    assert len(calls) == 3


def test_a_4xx_is_not_retried_and_names_what_flink_said() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"errors": ["Parallelism 300 exceeds the max parallelism 128.\nmore"]})

    with pytest.raises(FlinkHttpError) as caught:
        _client(handler).set_resource_requirements("j", {})
    assert len(calls) == 1 and caught.value.status == 400
    assert str(caught.value) == (
        "executor 'flink': PUT http://flink.test/jobs/j/resource-requirements answered 400: "
        "Parallelism 300 exceeds the max parallelism 128."
    )


def test_an_unreachable_cluster_is_one_line_after_bounded_tries() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ExecutorError) as caught:
        _client(handler, attempts=3).job("abc")
    assert len(calls) == 3
    assert "GET http://flink.test/jobs/abc failed after 3 tries: ConnectError: connection refused" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_second_up_or_down_on_the_same_state_folder_is_refused_while_one_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    from streamtune_cli.errors import UsageError
    from streamtune_cli.flink.cluster import ClusterSettings, cluster_down, cluster_up

    settings = ClusterSettings(state_dir=tmp_path, rest_port=1)
    holder = subprocess.Popen(  # another process in the middle of `flink up`: it holds the folder's lock
        [sys.executable, "-c", "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('locked', flush=True)\ntime.sleep(60)", str(tmp_path / ".lock")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for call in (lambda: cluster_up(settings), lambda: cluster_down(settings)):
            with pytest.raises(UsageError, match="another `streamtune flink up` or `down` is running"):
                call()
    finally:
        holder.kill()
        holder.wait()
    # Once the other process is gone, the lock is free: `down` finds no cluster, nothing to do.
    assert cluster_down(settings) is None
