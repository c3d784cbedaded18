"""Features come from what a deployment exposes: hidden spec fields never move them; splits are by job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.gnn.features import EDGE_FEATURES, NODE_FEATURES, graph_structure, samples_from_history, tabular
from streamtune_cli.gnn.train import split_by_job
from streamtune_cli.history.store import HistoryStore
from streamtune_cli.spec.loader import spec_to_data
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.tuning.testing import hide_ground_truth
from streamtune_cli.tuning.view import JobView


def _rewrite_specs(source: Path, target: Path) -> None:
    """A copy of a history whose stored specs have every hidden field changed (cost, selectivity, ...)."""
    store = HistoryStore.open(source)
    runs, rows = store.read("runs"), store.read("rows")
    specs = [
        json.dumps(spec_to_data(hide_ground_truth(JobSpec.model_validate(json.loads(text)))), separators=(",", ":"))
        for text in runs.column("spec_json").to_pylist()
    ]
    changed = runs.set_column(runs.schema.get_field_index("spec_json"), "spec_json", pa.array(specs, pa.string()))
    assert changed.column("spec_json").to_pylist() != runs.column("spec_json").to_pylist()
    HistoryStore.create(target).append(changed, rows)


def test_hidden_spec_fields_do_not_move_any_feature(tiny_history: tuple[Path, Path], tmp_path: Path) -> None:
    history, _ = tiny_history
    _rewrite_specs(history, tmp_path / "altered")
    ours, theirs = samples_from_history(history), samples_from_history(tmp_path / "altered")
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert (a.run_id, a.window, a.operators) == (b.run_id, b.window, b.operators)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.edge_index, b.edge_index)
        np.testing.assert_array_equal(a.edge_attr, b.edge_attr)
        np.testing.assert_array_equal(a.y, b.y)


def test_samples_have_the_declared_shapes_and_labels(tiny_history: tuple[Path, Path]) -> None:
    history, _ = tiny_history
    samples = samples_from_history(history)
    store = HistoryStore.open(history)
    assert len(samples) == store.scan("rows").select("run_id", "window").unique().collect().height
    for s in samples[:50]:
        assert s.x.shape == (len(s.operators), len(NODE_FEATURES))
        assert s.edge_attr.shape == (s.edge_index.shape[1], len(EDGE_FEATURES))
        assert np.isfinite(s.x).all() and ((s.y == 0) | (s.y == 1)).all()
        # every DAG edge appears once in each direction
        assert s.edge_index.shape[1] % 2 == 0
    X, y = tabular(samples)
    assert X.shape[0] == y.shape[0] == sum(len(s.operators) for s in samples)
    assert 0 < y.mean() < 0.5  # bottlenecks are the rare class, but present


def test_structure_features_follow_the_dag() -> None:
    spec = JobSpec.model_validate(
        {
            "name": "v",
            "workload": {"rate_rps": 1000},
            "operators": [
                {"id": "a", "kind": "source"}, {"id": "b", "kind": "source"},
                {"id": "j", "kind": "join", "key": ["k"]}, {"id": "s", "kind": "sink"},
            ],
            "edges": [
                {"from": "a", "to": "j", "partitioning": "hash", "key": ["k"]},
                {"from": "b", "to": "j", "partitioning": "hash", "key": ["k"]},
                {"from": "j", "to": "s", "partitioning": "rebalance"},
            ],
        }
    )
    structure = graph_structure(JobView.from_spec(spec))
    assert structure.operators == ("a", "b", "j", "s")
    names = NODE_FEATURES
    depth = structure.static[:, names.index("depth")]
    assert list(depth) == [0.0, 0.0, 0.5, 1.0]
    hash_in = structure.static[:, names.index("input=hash")]
    assert list(hash_in) == [0.0, 0.0, 1.0, 0.0]
    assert structure.edge_index.shape == (2, 6)


@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(st.text(alphabet="abcdef0123", min_size=1, max_size=6), min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
)
def test_split_by_job_is_a_partition_of_jobs(jobs: list[str], seed: int) -> None:
    groups = split_by_job(jobs, (0.7, 0.15, 0.15), seed)
    assert set().union(*groups) == set(jobs)
    assert sum(len(g) for g in groups) == len(set(jobs))  # no job in two groups
    assert groups == split_by_job(list(reversed(jobs)), (0.7, 0.15, 0.15), seed)  # order does not matter
    if len(set(jobs)) >= 3:
        assert all(groups)
