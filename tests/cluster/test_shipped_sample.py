"""The shipped sample: sample_histories/history is what the documented command generates, and
sample_histories/clusters.json is what `streamtune cluster build` makes of it."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from sklearn.metrics import adjusted_rand_score

from streamtune_cli.history.clusters import build_clusters, load_clusters
from streamtune_cli.history.generate import generate_history
from streamtune_cli.history.queries import history_stats
from streamtune_cli.history.store import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_histories"
HISTORY = SAMPLE / "history"


def test_sample_size_and_coverage() -> None:
    stats = history_stats(HISTORY)
    assert stats["runs"] >= 2000
    assert len(stats["families"]) >= 6 and min(stats["families"].values()) >= 200
    total_bytes = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    assert total_bytes < 20 * 1024 * 1024


def test_sample_is_the_documented_generate_command(tmp_path: Path) -> None:
    docs = (ROOT / "docs/history.md").read_text()
    assert "streamtune history generate --jobs 2000 --seed 0 --out sample_histories/history" in docs
    # Generation is a prefix-stable function of (seed, run index): regenerating the first runs must
    # reproduce the shipped ones exactly.
    generate_history(tmp_path / "h", jobs=25, seed=0, workers=1)
    ours = HistoryStore.open(tmp_path / "h")
    shipped = HistoryStore.open(HISTORY)
    ids = sorted(ours.run_ids())
    for table, keys in (("runs", ["run_id"]), ("rows", ["run_id", "window", "operator"])):
        a = shipped.scan(table).filter(pl.col("run_id").is_in(ids)).sort(keys).collect()
        assert a.equals(ours.scan(table).sort(keys).collect()), table


def test_shipped_clusters_match_a_rebuild_and_recover_families() -> None:
    shipped = json.loads((SAMPLE / "clusters.json").read_text())
    rebuilt = build_clusters(HISTORY, seed=shipped["seed"], n_jobs=1)
    shipped.pop("history"), rebuilt.pop("history")
    assert rebuilt == shipped
    runs = {r["run_id"]: r["family"] for r in HistoryStore.open(HISTORY).read("runs", ["run_id", "family"]).to_pylist()}
    predicted = {run: c["id"] for c in shipped["clusters"] for run in c["run_ids"]}
    assert predicted.keys() == runs.keys()
    ids = sorted(runs)
    assert adjusted_rand_score([runs[i] for i in ids], [predicted[i] for i in ids]) >= 0.9
    assert len(load_clusters(SAMPLE / "clusters.json").medoids) == shipped["k"]
