"""`streamtune pretrain`: one GNN encoder per history cluster (torch is imported only when it runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

ORDER = 55


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def pretrain(
    history: Path = typer.Argument(..., help="History folder (as `streamtune history generate` writes)."),
    clusters: Path = typer.Option(..., "--clusters", "-c", help="clusters.json built from this history (`streamtune cluster build`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the models: one cluster-<id>/ per cluster and index.json."),
    evaluate: bool = typer.Option(
        False, "--evaluate", help="Also train the non-graph baseline on the same splits and run leave-one-family-out."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the splits and of training: the same seed gives the same models."),
    epochs: int = typer.Option(60, "--epochs", min=1, max=10_000, help="Most epochs per model (early stopping usually ends sooner)."),
    patience: int = typer.Option(6, "--patience", min=1, help="Epochs without a better validation loss before stopping."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda (auto: a GPU when one is visible)."),
    threads: int = typer.Option(
        2, "--threads", min=1, max=64,
        help="CPU threads for torch. Weights are bit-identical for the same seed and thread count (the shipped models: 2).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Pretrain one graph encoder per cluster to predict operator bottlenecks from what a cluster measures.

    Splits are by job (run), never by row: each model is scored on held-out jobs of its cluster. With
    --evaluate, a non-graph baseline runs on the same splits, and one model per family is trained without
    that family and tested on it. See docs/gnn.md.
    """
    from streamtune_cli.cli.common import console, err_console, quiet_progress, write_json_atomic
    from streamtune_cli.gnn.pretrain import pretrain as run_pretrain
    from streamtune_cli.gnn.train import TrainConfig

    if device not in ("auto", "cpu", "cuda"):
        from streamtune_cli.errors import UsageError

        raise UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
    config = TrainConfig(epochs=epochs, patience=patience, seed=seed)
    show = not as_json and not quiet_progress()
    progress = None
    tasks: dict[str, Any] = {}
    if show:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(), console=err_console,
        )

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if progress is None:
            if kind in ("cluster", "family") and not as_json:
                what = f"cluster {data['cluster']}" if kind == "cluster" else f"without family {data['family']}"
                auc = (data.get("held_out_jobs") or data.get("held_out_family") or {}).get("roc_auc")
                err_console.print(f"trained {what}: held-out ROC-AUC {_fmt(auc)}", highlight=False)
            return
        if kind == "start":
            tasks["models"] = progress.add_task("models", total=data["clusters"] + data["families"], status="")
        elif kind == "epoch":
            auc = data.get("val_auc")
            auc_text = "—" if auc is None or auc != auc else f"{auc:.3f}"
            label = f"cluster {data['cluster']}" if "cluster" in data else f"without {data['family']}"
            progress.update(
                tasks["models"],
                status=f"{label} epoch {int(data['epoch'])} loss {data['train_loss']:.3f} val AUC {auc_text}",
            )
        elif kind in ("cluster", "family"):
            progress.advance(tasks["models"])

    if progress is not None:
        with progress:
            report = run_pretrain(
                history, clusters, out, config=config, device=device, evaluate=evaluate, threads=threads, on_event=on_event
            )
    else:
        report = run_pretrain(
            history, clusters, out, config=config, device=device, evaluate=evaluate, threads=threads, on_event=on_event
        )
    write_json_atomic(out / "pretrain-report.json", report)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_report(console, report)


def _print_report(console: Any, report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"held-out jobs, per cluster ({report['out']})")
    for column in ("cluster", "families", "jobs train/val/test", "epochs", "GNN ROC-AUC", "PR-AUC", "F1"):
        table.add_column(column, justify="left" if column in ("cluster", "families") else "right")
    baseline = any("baseline_held_out_jobs" in row for row in report["clusters"])
    if baseline:
        for column in ("baseline ROC-AUC", "PR-AUC ", "F1 "):
            table.add_column(column, justify="right")
    for row in report["clusters"]:
        m = row["held_out_jobs"]
        jobs = row["jobs"]
        cells = [
            row["cluster"],
            ", ".join(row["families"]),
            f"{jobs['train']}/{jobs['validation']}/{jobs['test']}",
            f"{row['best_epoch']}/{row['epochs_run']}",
            _fmt(m["roc_auc"]), _fmt(m["pr_auc"]), _fmt(m["f1"]),
        ]
        if baseline:
            b = row["baseline_held_out_jobs"]
            cells += [_fmt(b["roc_auc"]), _fmt(b["pr_auc"]), _fmt(b["f1"])]
        table.add_row(*cells)
    console.print(table)
    if report["families"]:
        table = Table(title="held-out families (trained without the family, tested on all its jobs)")
        for column in ("family", "test jobs", "GNN ROC-AUC", "PR-AUC", "F1", "baseline ROC-AUC", "PR-AUC ", "F1 "):
            table.add_column(column, justify="left" if column == "family" else "right")
        for row in report["families"]:
            m, b = row["held_out_family"], row["baseline_held_out_family"]
            table.add_row(row["family"], str(row["jobs"]["test"]), _fmt(m["roc_auc"]), _fmt(m["pr_auc"]), _fmt(m["f1"]),
                          _fmt(b["roc_auc"]), _fmt(b["pr_auc"]), _fmt(b["f1"]))
        console.print(table)
    console.print(
        f"pretrained {len(report['clusters'])} cluster model(s) on {report['device']} in {report['elapsed_s']:.1f} s; "
        f"wrote {report['out']}/index.json and {report['out']}/pretrain-report.json"
    )


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, pretrain, "pretrain")
