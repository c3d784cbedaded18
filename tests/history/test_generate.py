"""The synthetic history generator: determinism, valid and distinct families, stable DAGs, label balance."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from streamtune_cli.history.generate import WINDOW_PLAN, forward_groups, generate_history, simulate_run
from streamtune_cli.history.store import HistoryStore
from streamtune_cli.history.templates import FAMILIES, draw_spec
from streamtune_cli.spec import JobGraph, dump_spec, load_spec_text
from streamtune_cli.spec.models import Partitioning
from streamtune_cli.tuning.oracle import oracle_parallelism


@pytest.fixture(scope="module")
def small_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "h"
    generate_history(out, jobs=140, seed=5, workers=1)
    return out


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_family_draws_specs_that_pass_full_validation(family) -> None:  # noqa: ANN001
    for i in range(15):
        spec, variant = draw_spec(family, np.random.default_rng([1, i]))
        # Round trip through YAML and the loader: every rule a hand-written spec must pass (DAG, joins, keys).
        reloaded = load_spec_text(dump_spec(spec), check_sql_expressions=False)
        assert reloaded == spec
        assert variant


def test_families_are_at_least_six_and_structurally_different() -> None:
    assert len(FAMILIES) >= 6
    signatures = {}
    for family in FAMILIES:
        spec, _ = draw_spec(family, np.random.default_rng(0))
        graph = JobGraph(spec)
        kinds = Counter(op.kind.value for op in spec.operators)
        signatures[family.name] = (len(graph.sources), len(graph.sinks), kinds["join"], kinds["source"], len(spec.operators))
    assert len(set(signatures.values())) == len(FAMILIES), signatures


def test_same_seed_same_history_and_runs_are_a_prefix(tmp_path: Path, small_history: Path) -> None:
    again = tmp_path / "again"
    generate_history(again, jobs=40, seed=5, workers=1)
    first = HistoryStore.open(small_history)
    second = HistoryStore.open(again)
    ids = sorted(second.run_ids())
    assert ids == [f"gen-5-{i:06d}" for i in range(40)]
    for table, keys in (("runs", ["run_id"]), ("rows", ["run_id", "window", "operator"])):
        a = first.scan(table).filter(pl.col("run_id").is_in(ids)).sort(keys).collect()
        b = second.scan(table).sort(keys).collect()
        assert a.equals(b), table


def test_another_seed_gives_another_history() -> None:
    a, b = simulate_run(1, 0), simulate_run(2, 0)
    assert (a.spec, [w.model_dump() for w in a.windows]) != (b.spec, [w.model_dump() for w in b.windows])


def test_worker_processes_do_not_change_the_result(tmp_path: Path) -> None:
    generate_history(tmp_path / "one", jobs=60, seed=9, workers=1, runs_per_part=25)
    generate_history(tmp_path / "two", jobs=60, seed=9, workers=2, runs_per_part=25)
    one, two = HistoryStore.open(tmp_path / "one"), HistoryStore.open(tmp_path / "two")
    assert len(one.parts()) == len(two.parts()) == 3
    for table in ("runs", "rows"):
        assert one.read(table).equals(two.read(table))


def test_windows_cover_under_near_and_over_provisioning() -> None:
    throttled: dict[str, list[bool]] = {"under": [], "near": [], "over": []}
    for index in range(20):
        run = simulate_run(3, index)
        assert sorted(run.plan) == sorted(WINDOW_PLAN)
        assert oracle_parallelism(run.spec).feasible
        for kind, obs in zip(run.plan, run.windows):
            ratio = [obs.operators[op].parallelism / run.oracle[op] for op in run.oracle]
            group = kind.split("_")[0]
            throttled[group].append(obs.backpressured)
            if group == "over":
                assert min(ratio) >= 1.0 and max(ratio) > 1.0
            elif group == "under":
                assert min(ratio) < 1.0
    # Under-provisioned windows throttle the sources, over-provisioned ones never do, near ones sometimes.
    share = {group: sum(flags) / len(flags) for group, flags in throttled.items()}
    assert share["under"] >= 0.9 and share["over"] == 0.0 and 0.1 < share["near"] < 0.7, share


def test_forward_edges_keep_equal_parallelism_so_the_stored_dag_is_the_deployed_one() -> None:
    for index in range(21):
        run = simulate_run(4, index)
        forward = [e for e in run.spec.edges if e.partitioning == Partitioning.forward]
        for obs in run.windows:
            for edge in forward:
                assert obs.operators[edge.src].parallelism == obs.operators[edge.dst].parallelism
        groups = forward_groups(run.graph)
        assert sorted(op for g in groups for op in g) == sorted(run.oracle)


def test_history_contents_are_consistent_and_labels_are_balanced(small_history: Path) -> None:
    store = HistoryStore.open(small_history)
    runs = store.scan("runs").collect()
    rows = store.scan("rows").collect()
    assert runs.height == 140
    assert set(runs["family"]) == {f.name for f in FAMILIES}
    assert (runs["n_windows"] == len(WINDOW_PLAN)).all()
    per_run = rows.group_by("run_id").agg(pl.len().alias("n"), pl.col("window").n_unique().alias("w"))
    joined = per_run.join(runs.select("run_id", "n_operators", "n_windows"), on="run_id")
    assert (joined["n"] == joined["n_operators"] * joined["n_windows"]).all()
    assert (joined["w"] == joined["n_windows"]).all()
    windows = rows.group_by("run_id", "window").agg(
        pl.col("bottleneck").any().alias("has_bottleneck"),
        (pl.col("achieved_rate_rps") < 0.98 * pl.col("target_rate_rps")).first().alias("throttled"),
    )
    # Every throttled window has a bottleneck; throttled and unthrottled windows are both common.
    assert windows.filter(pl.col("throttled") & ~pl.col("has_bottleneck")).height == 0
    throttled_share = windows["throttled"].mean()
    assert 0.3 < throttled_share < 0.7
    assert 0.4 < windows["has_bottleneck"].mean() < 0.85
    # Bottlenecks are spread over several operator kinds, not only the most expensive one.
    assert rows.filter(pl.col("bottleneck"))["kind"].n_unique() >= 6
