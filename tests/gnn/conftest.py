"""A tiny history with its clusters, built once per session (seconds, not the shipped sample's minute)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from streamtune_cli.history.clusters import build_clusters
    from streamtune_cli.history.generate import generate_history
    from streamtune_cli.io import write_json_atomic

    root = tmp_path_factory.mktemp("gnn")
    history = root / "history"
    generate_history(history, jobs=70, seed=3, workers=1)
    clusters = root / "clusters.json"
    write_json_atomic(clusters, build_clusters(history, seed=0, n_jobs=1))
    return history, clusters
