"""The models shipped in sample_histories/models: built by the documented command, loadable, and as good
on held-out jobs as docs/gnn.md says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamtune_cli.gnn.artifacts import load_index, load_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "sample_histories/models"
DOC = (ROOT / "docs/gnn.md").read_text()
COMMAND = "streamtune pretrain sample_histories/history --clusters sample_histories/clusters.json --out sample_histories/models --evaluate"


def test_every_shipped_cluster_has_a_loadable_model() -> None:
    index = load_index(MODELS)
    clusters = json.loads((ROOT / "sample_histories/clusters.json").read_text())["clusters"]
    assert [e["cluster"] for e in index["clusters"]] == [str(c["id"]) for c in clusters]
    for entry in index["clusters"]:
        model, meta = load_model(MODELS / entry["path"])
        assert meta["history"] == "sample_histories/history"
        assert meta["metrics"]["held_out_jobs"]["roc_auc"] >= 0.95


def test_the_doc_gives_the_command_and_its_figures() -> None:
    assert COMMAND in DOC
    report = json.loads((MODELS / "pretrain-report.json").read_text())
    for row in report["clusters"]:
        auc = row["held_out_jobs"]["roc_auc"]
        assert re.search(rf"\| {re.escape(row['cluster'])} \| [^|]+ \| [^|]+ \| {auc:.3f} \|", DOC), row["cluster"]
    for row in report["families"]:
        auc = row["held_out_family"]["roc_auc"]
        assert f"| {row['family']} | {row['jobs']['test']} | {auc:.3f} |" in DOC, row["family"]
        assert auc >= 0.90


def test_the_shipped_sample_stays_small() -> None:
    total = sum(p.stat().st_size for p in (ROOT / "sample_histories").rglob("*") if p.is_file())
    assert total < 25 * 1024 * 1024
