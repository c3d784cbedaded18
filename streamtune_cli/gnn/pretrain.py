"""`streamtune pretrain`: one encoder per cluster of clusters.json, with held-out-job metrics always, and
with --evaluate the non-graph baseline on the same splits and the leave-one-family-out evaluation."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from streamtune_cli.errors import UsageError
from streamtune_cli.gnn.features import GraphSample, samples_from_history
from streamtune_cli.gnn.train import (
    TrainConfig,
    baseline_scores,
    classification_metrics,
    predict,
    resolve_device,
    scaling_rmse,
    split_by_job,
    train_encoder,
)

__all__ = ["pretrain", "SPLIT", "FAMILY_SPLIT"]

# Per cluster: train / validation (early stopping) / test (held-out jobs), by run id.
SPLIT = (0.70, 0.15, 0.15)
# Leave one family out: the other families' jobs split into train / validation; the family is the test.
FAMILY_SPLIT = (0.85, 0.15)


def _clean(value: Any) -> Any:
    """JSON has no NaN: metrics that could not be computed become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def scaling_priors(samples: list[GraphSample]) -> dict[str, dict[str, float]]:
    """Mean and std of the measured scaling exponent per (kind, hash input or not): the non-graph prior."""
    from streamtune_cli.gnn.features import NODE_FEATURES

    kinds = [name.split("=", 1)[1] for name in NODE_FEATURES if name.startswith("kind=")]
    hash_column = NODE_FEATURES.index("input=hash")
    seen: dict[str, dict[tuple[str, str], float]] = {}
    for s in samples:
        if s.delta is None:
            continue
        for i, op in enumerate(s.operators):
            if not np.isnan(s.delta[i]):
                kind = kinds[int(np.argmax(s.x[i, : len(kinds)]))]
                key = f"{kind}|{'hash' if s.x[i, hash_column] > 0 else 'other'}"
                seen.setdefault(key, {})[(s.run_id, op)] = float(s.delta[i])  # once per run and operator
    return {
        key: {"mean": float(np.mean(list(v.values()))), "std": float(np.std(list(v.values()))), "n": len(v)}
        for key, v in sorted(seen.items())
    }


def _select(samples: list[GraphSample], run_ids: set[str]) -> list[GraphSample]:
    return [s for s in samples if s.run_id in run_ids]


def _held_out(model: Any, test: list[GraphSample], device: Any) -> dict[str, Any]:
    y = np.concatenate([s.y for s in test]) if test else np.zeros(0)
    return {**classification_metrics(y, predict(model, test, device)), "scaling_rmse": scaling_rmse(model, test, device)}


def pretrain(
    history: str | Path,
    clusters_path: str | Path,
    out: str | Path,
    *,
    config: TrainConfig = TrainConfig(),
    device: str = "cpu",
    evaluate: bool = False,
    threads: int | None = 2,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and save one encoder per cluster; returns the report (per cluster, and per family with --evaluate).

    on_event(kind, data) is called with ("start", {clusters, families}), ("epoch", {...}), ("cluster", row)
    and ("family", row), so a CLI can show progress.
    """
    import torch

    from streamtune_cli.gnn.artifacts import INDEX_FILE, MODEL_FORMAT, MODEL_FORMAT_VERSION, save_model
    from streamtune_cli.history.clusters import load_clusters
    from streamtune_cli.io import write_json_atomic

    if threads is not None:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    emit = on_event or (lambda kind, data: None)
    torch_device = resolve_device(device)
    clusters = load_clusters(clusters_path)
    samples = samples_from_history(history)
    if not samples:
        raise UsageError(f"{history}: the history has no measured windows to learn from")
    known_runs = {s.run_id for s in samples}
    families = sorted({s.family for s in samples if s.family})
    emit("start", {"clusters": len(clusters.data["clusters"]), "families": len(families) if evaluate else 0})
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out must be a folder (it is a file)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the models folder: {exc.strerror or exc}") from None
    cluster_rows: list[dict[str, Any]] = []
    index_entries: list[dict[str, Any]] = []
    for cluster in clusters.data["clusters"]:
        cid = str(cluster.get("id"))
        run_ids = cluster.get("run_ids")
        if not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids):
            raise UsageError(f"{clusters_path}: cluster {cid} has no list of run_ids")
        runs = sorted(set(run_ids) & known_runs)
        if not runs:
            raise UsageError(f"{clusters_path}: cluster {cid} has no runs in {history} (were the clusters built from it?)")
        train_ids, val_ids, test_ids = split_by_job(runs, SPLIT, config.seed)
        train, val, test = _select(samples, train_ids), _select(samples, val_ids), _select(samples, test_ids)
        result = train_encoder(
            train, val, config, device=torch_device, on_epoch=lambda point, cid=cid: emit("epoch", {"cluster": cid, **point})
        )
        held_out = _held_out(result.model, test, torch_device)
        row: dict[str, Any] = {
            "cluster": cid,
            "families": cluster.get("families", {}),
            "jobs": {"train": len(train_ids), "validation": len(val_ids), "test": len(test_ids)},
            "windows_train": len(train),
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "train_s": round(result.train_s, 2),
            "held_out_jobs": held_out,
        }
        if evaluate:
            row["baseline_held_out_jobs"] = baseline_scores(train, test, config.seed)
        directory = out / f"cluster-{cid}"
        save_model(
            directory,
            result.model.cpu(),
            _clean(
                {
                    "cluster": cid,
                    "medoid": cluster.get("medoid"),
                    "families": cluster.get("families", {}),
                    "history": str(history),
                    "clusters_file": str(clusters_path),
                    "seed": config.seed,
                    "training": {
                        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
                        "split": {"train": SPLIT[0], "validation": SPLIT[1], "test": SPLIT[2], "by": "run_id"},
                        "jobs": row["jobs"],
                        "best_epoch": result.best_epoch,
                        "epochs_run": result.epochs_run,
                        "train_s": row["train_s"],
                        "curve": result.curve,
                    },
                    "metrics": {"validation": result.validation, "held_out_jobs": held_out},
                    "scaling_priors": scaling_priors(train + val),
                }
            ),
        )
        result.model.to(torch_device)
        index_entries.append(
            {"cluster": cid, "path": directory.name, "medoid_dag_hash": (cluster.get("medoid") or {}).get("dag_hash"), "n_runs": len(runs)}
        )
        cluster_rows.append(row)
        emit("cluster", row)
    family_rows: list[dict[str, Any]] = []
    if evaluate:
        by_family: dict[str, set[str]] = {}
        for s in samples:
            if s.family:
                by_family.setdefault(s.family, set()).add(s.run_id)
        for family in families:
            others = sorted(known_runs - by_family[family])
            if not others:
                continue
            train_ids, val_ids = split_by_job(others, FAMILY_SPLIT, config.seed)
            train, val = _select(samples, train_ids), _select(samples, val_ids)
            test = _select(samples, by_family[family])
            result = train_encoder(
                train, val, config, device=torch_device, on_epoch=lambda point, f=family: emit("epoch", {"family": f, **point})
            )
            frow = {
                "family": family,
                "jobs": {"train": len(train_ids), "validation": len(val_ids), "test": len(by_family[family])},
                "held_out_family": _held_out(result.model, test, torch_device),
                "baseline_held_out_family": baseline_scores(train, test, config.seed),
                "train_s": round(result.train_s, 2),
            }
            family_rows.append(frow)
            emit("family", frow)
    elapsed = time.perf_counter() - started
    write_json_atomic(
        out / INDEX_FILE,
        _clean(
            {
                "format": MODEL_FORMAT,
                "format_version": MODEL_FORMAT_VERSION,
                "history": str(history),
                "clusters_file": str(clusters_path),
                "seed": config.seed,
                "clusters": index_entries,
            }
        ),
    )
    return _clean(
        {
            "schema": "streamtune.pretrain/1",
            "history": str(history),
            "clusters_file": str(clusters_path),
            "out": str(out),
            "device": str(torch_device),
            "seed": config.seed,
            "clusters": cluster_rows,
            "families": family_rows,
            "elapsed_s": round(elapsed, 2),
        }
    )
