"""`streamtune pretrain`: one GNN encoder per history cluster (torch is imported only when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from streamtune_cli.cli.common import json_option

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
    as_json: Optional[str] = json_option("The report as JSON (streamtune.pretrain/1; also in OUT/pretrain-report.json)."),
) -> None:
    """Pretrain one graph encoder per cluster to predict operator bottlenecks from what a cluster measures.

    Splits are by job (run), never by row: each model is scored on held-out jobs of its cluster. With
    --evaluate, a non-graph baseline runs on the same splits, and one model per family is trained without
    that family and tested on it. See docs/gnn.md.
    """
    from streamtune_cli.cli.common import err_console, is_stdout, notice_console, print_written, quiet_progress, write_json_atomic, write_output
    from streamtune_cli.gnn.pretrain import pretrain as run_pretrain
    from streamtune_cli.gnn.train import TrainConfig

    from streamtune_cli.cli.commands.tuning_commands import folder_option

    folder_option(out, "--out", "--json")
    if device not in ("auto", "cpu", "cuda"):
        from streamtune_cli.errors import UsageError

        raise UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
    config = TrainConfig(epochs=epochs, patience=patience, seed=seed)
    json_on_stdout = is_stdout(as_json)
    show = not json_on_stdout and not quiet_progress()
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
            if kind in ("cluster", "family") and not json_on_stdout:
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
    if as_json is not None:
        written = write_output(as_json, report)
        if json_on_stdout:
            return
        print_written([written])
    _print_report(notice_console(False), report)


def _print_report(console: Any, report: dict[str, Any]) -> None:
    """One row per model and metric set: the GNN's, then the non-graph baseline's below it (with --evaluate),
    so the table stays within 80 columns and both read down the same columns."""
    from rich import box
    from rich.table import Table

    def table(title: str, first: tuple[str, ...]) -> Table:
        t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for column in first:
            t.add_column(column, no_wrap=column != "families", justify="left" if column in ("cluster", "families", "family") else "right")
        for column in ("model", "ROC-AUC", "PR-AUC", "F1"):
            t.add_column(column, no_wrap=True, justify="left" if column == "model" else "right")
        return t

    def metrics(m: dict[str, Any]) -> list[str]:
        return [_fmt(m["roc_auc"]), _fmt(m["pr_auc"]), _fmt(m["f1"])]

    clusters = table(f"held-out jobs, per cluster ({report['out']})", ("cluster", "families", "jobs\ntrain/val/test", "epochs\nbest/run"))
    for row in report["clusters"]:
        jobs = row["jobs"]
        clusters.add_row(
            row["cluster"], ", ".join(row["families"]), f"{jobs['train']}/{jobs['validation']}/{jobs['test']}",
            f"{row['best_epoch']}/{row['epochs_run']}", "GNN", *metrics(row["held_out_jobs"]),
        )
        if "baseline_held_out_jobs" in row:
            clusters.add_row("", "", "", "", "baseline", *metrics(row["baseline_held_out_jobs"]), style="dim")
            clusters.caption = "baseline ROC-AUC, PR-AUC, F1: the non-graph model, trained on the same splits"
    console.print(clusters)
    if report["families"]:
        families = table("held-out families (trained without the family, tested on all its jobs)", ("family", "test jobs"))
        for row in report["families"]:
            families.add_row(row["family"], str(row["jobs"]["test"]), "GNN", *metrics(row["held_out_family"]))
            families.add_row("", "", "baseline", *metrics(row["baseline_held_out_family"]), style="dim")
        console.print(families)
    console.print(
        f"pretrained {len(report['clusters'])} cluster model(s) on {report['device']} in {report['elapsed_s']:.1f} s"
    )
    for name in ("index.json", "pretrain-report.json"):
        console.print(f"wrote {report['out']}/{name}", highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, pretrain, "pretrain")
