"""`streamtune history` (generate, add, stats) and `streamtune cluster` (build, assign): the past, organized by DAG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, List, Optional

import typer

from streamtune_cli.cli.common import StreamtuneGroup, json_option
from streamtune_cli.ged.budget import DEFAULT_MAX_EXPANSIONS, DEFAULT_PAIR_MAX_EXPANSIONS

ORDER = 50

history_app = typer.Typer(
    cls=StreamtuneGroup,
    help="Execution histories: generate synthetic runs, import tuning traces, summarize.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _emit_json(as_json: str, schema: str, data: Any) -> bool:
    """Write a command's JSON (named by its schema) where --json says; True when that is stdout, in place of
    the tables."""
    from streamtune_cli.cli.common import is_stdout, print_written, write_output

    written = write_output(as_json, {"schema": schema, **data})
    if is_stdout(as_json):
        return True
    print_written([written])
    return False


def generate(
    out: Path = typer.Option(..., "--out", "-o", help="History folder to create or extend."),
    jobs: int = typer.Option(2000, "--jobs", "-n", min=1, help="Number of runs (jobs) to generate."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed (>= 0): the same seed gives the same history."),
    workers: int = typer.Option(
        0, "--workers", min=0,
        help="Worker processes; 0 = one per core. Capped at the cores and the chunks of work (output does not depend on it).",
    ),
    as_json: Optional[str] = json_option("The summary as JSON (streamtune.history-generate/1)."),
) -> None:
    """Generate runs of template job families on the sim executor, at under-, near- and over-provisioned parallelism.

    Resumable: runs of this seed already in the history (an interrupted or shorter generation) are kept and
    skipped, so the same command run again finishes the work; once complete, it writes nothing.
    """
    from streamtune_cli.cli.common import console, progress_bar
    from streamtune_cli.history.generate import generate_history
    from streamtune_cli.history.store import HistoryStore

    started = time.perf_counter()
    with progress_bar("generating runs", jobs) as advance:
        summary = generate_history(out, jobs=jobs, seed=seed, workers=workers or None, progress=advance)
    elapsed_s = time.perf_counter() - started
    size = HistoryStore.open(out).size_bytes()
    result = {
        "history": str(out),
        "runs": summary.runs,
        "already_present": summary.already_present,
        "rows": summary.rows,
        "parts_written": len(summary.parts),
        "families": summary.families,
        "seed": seed,
        "elapsed_s": round(elapsed_s, 2),
        "size_bytes": size,
    }
    if as_json is not None and _emit_json(as_json, "streamtune.history-generate/1", result):
        return
    families = ", ".join(f"{name} {count}" for name, count in summary.families.items())
    kept = f"; {summary.already_present:,} already present, kept" if summary.already_present else ""
    console.print(
        f"[green]generated[/green] {summary.runs:,} runs ({summary.rows:,} rows) into {out}{kept} "
        f"in {elapsed_s:.1f} s, {size / 1e6:.1f} MB on disk" + (f"\n  families: {families}" if families else "")
    )


def add(
    traces: List[Path] = typer.Argument(..., help="Tuning trace JSON files (as `streamtune tune --report` writes)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="History folder to add to (created if missing; default: history)."),
    to: Optional[Path] = typer.Option(None, "--to", hidden=True, help="Deprecated spelling of --out."),
    as_json: Optional[str] = json_option("What was added, as JSON (streamtune.history-add/1)."),
) -> None:
    """Add tuning traces to a history: each trace becomes one run, each of its steps one window."""
    from streamtune_cli.cli.common import console, err_console
    from streamtune_cli.errors import UsageError
    from streamtune_cli.history.importers import add_trace

    if to is not None:
        if out is not None and out != to:
            raise UsageError(f"--out {out} and --to {to} name different histories; --to is the old name of --out: give only --out")
        err_console.print("note: `history add --to` is deprecated; use --out", style="yellow", markup=False, highlight=False)
    to = out or to or Path("history")

    results = []
    for path in traces:
        added = add_trace(path, to)
        results.append({"trace": str(path), "run_id": added.run_id, "job": added.job, "windows": added.windows,
                        "rows": added.rows, "added": added.added})
        if as_json != "-":
            if added.added:
                console.print(f"[green]added[/green] {path} -> {to} as {added.run_id} ({added.windows} windows, {added.rows} rows)")
            else:
                console.print(f"[yellow]skipped[/yellow] {path}: already in {to} as {added.run_id}")
    if as_json is not None:
        _emit_json(as_json, "streamtune.history-add/1", {"history": str(to), "traces": results})


def stats(
    history: Path = typer.Argument(..., help="History folder."),
    as_json: Optional[str] = json_option("The statistics as JSON (streamtune.history-stats/1)."),
) -> None:
    """Summarize a history: runs, windows, rows, families, operators by kind, bottleneck rate, size on disk."""
    from rich.table import Table

    from streamtune_cli.cli.common import console
    from streamtune_cli.history.queries import history_stats

    data = history_stats(history)
    if as_json is not None and _emit_json(as_json, "streamtune.history-stats/1", data):
        return

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    summary = Table(title=f"history {history}", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    for label, value in (
        ("runs", f"{data['runs']:,}"),
        ("windows", f"{data['windows']:,}"),
        ("rows (window x operator)", f"{data['rows']:,}"),
        ("distinct DAGs", f"{data['distinct_dags']:,}"),
        ("families", f"{len(data['families'])}"),
        ("bottleneck rate (rows)", pct(data["bottleneck_rate"])),
        ("windows with a bottleneck", pct(data["windows_with_bottleneck"])),
        ("windows throttled (achieved < target)", pct(data["windows_throttled"])),
        ("parts", f"{data['parts']}"),
        ("size on disk", f"{data['size_bytes'] / 1e6:.2f} MB"),
    ):
        summary.add_row(label, value)
    console.print(summary)
    families = Table(title="runs by family")
    families.add_column("family")
    families.add_column("runs", justify="right")
    for name, count in data["families"].items():
        families.add_row(name, f"{count:,}")
    console.print(families)
    kinds = Table(title="operators by kind")
    for column in ("kind", "operators", "rows", "bottleneck rate"):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, entry in data["operators_by_kind"].items():
        kinds.add_row(kind, f"{entry['operators']:,}", f"{entry['rows']:,}", pct(entry["bottleneck_rate"]))
    console.print(kinds)


class _DefaultBuildGroup(StreamtuneGroup):
    """`streamtune cluster HISTORY ...` means `streamtune cluster build HISTORY ...`.

    Anything that is not a subcommand name or a help flag is taken as the start of `build`'s arguments, so a
    history folder literally named `build` or `assign` needs the explicit form (`cluster build assign`).
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["build", *args]
        return super().parse_args(ctx, args)


cluster_app = typer.Typer(
    cls=_DefaultBuildGroup,
    help="Cluster a history's jobs by graph edit distance of their DAGs; assign a new job to its nearest cluster.\n\n"
    "`streamtune cluster HISTORY --out clusters.json` is short for `streamtune cluster build HISTORY ...`.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def build(
    history: Path = typer.Argument(..., help="History folder."),
    out: Path = typer.Option(Path("clusters.json"), "--out", "-o", help="Where to write the clusters (JSON); '-' is stdout."),
    k: str = typer.Option("auto", "--k", help="Number of clusters, or 'auto' to choose it by silhouette."),
    seed: int = typer.Option(0, "--seed", help="Seed for anything random in the clustering."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes for the distance matrix; 0 = one per core."),
    max_expansions: int = typer.Option(
        DEFAULT_PAIR_MAX_EXPANSIONS, "--max-expansions", min=0,
        help="Search budget per pair of distinct DAGs: at most this many branch-and-bound node expansions in the "
        "exact GED search (a count of work, not seconds, so the clusters do not depend on the machine's speed). "
        "A pair that runs out keeps its proven bounds and is not counted as exact; 0 = bounds only.",
    ),
    as_json: Optional[str] = json_option("The summary as JSON (streamtune.cluster-build/1)."),
) -> None:
    """Cluster the history's distinct DAGs by graph edit distance and record medoids, members and families."""
    from streamtune_cli.cli.common import check_one_stdout, is_stdout, notice_console, progress_bar, write_output
    from streamtune_cli.errors import UsageError
    from streamtune_cli.history.clusters import build_clusters
    from streamtune_cli.history.queries import dag_groups

    if k != "auto":
        try:
            k_value: int | str = int(k)
        except ValueError:
            raise UsageError(f"--k must be 'auto' or a positive integer, got {k!r}") from None
        if k_value < 1:
            raise UsageError(f"--k must be 'auto' or a positive integer, got {k!r}")
    else:
        k_value = "auto"
    check_one_stdout(out=out, json=as_json)
    console = notice_console(is_stdout(out))  # `--out -` puts clusters.json on stdout: notes go to stderr
    started = time.perf_counter()
    groups = dag_groups(history)
    pairs = len(groups) * (len(groups) - 1) // 2
    with progress_bar(f"graph edit distances ({len(groups)} distinct DAGs)", pairs) as advance:
        reported = [0]

        def progress(done: int, total: int) -> None:
            advance(done - reported[0])
            reported[0] = done

        result = build_clusters(
            history, k=k_value, seed=seed, n_jobs=workers or None, progress=progress, groups=groups, max_expansions=max_expansions
        )
    elapsed_s = time.perf_counter() - started
    write_output(out, result)
    summary = {key: result[key] for key in ("n_runs", "n_dags", "k", "k_chosen_by", "silhouette", "adjusted_rand_index_vs_family", "distances")}
    summary.update(out=str(out), elapsed_s=round(elapsed_s, 2))
    if as_json is not None and _emit_json(as_json, "streamtune.cluster-build/1", summary):
        return
    from rich.table import Table

    table = Table(title=f"{result['k']} clusters of {result['n_runs']:,} runs ({result['n_dags']} distinct DAGs) -> {out}")
    for column in ("cluster", "runs", "DAGs", "families", "medoid"):
        table.add_column(column, justify="right" if column in ("cluster", "runs", "DAGs") else "left", overflow="fold")
    for cluster in result["clusters"]:
        families = ", ".join(f"{name} {count}" for name, count in cluster["families"].items())
        medoid = cluster["medoid"]
        table.add_row(str(cluster["id"]), f"{cluster['n_runs']:,}", str(cluster["n_dags"]), families,
                      f"{medoid['run_id']} ({len(medoid['graph']['nodes'])} operators)")
    console.print(table)
    notes = [f"k chosen by {result['k_chosen_by']}"]
    if result["silhouette"] is not None:
        notes.append(f"silhouette {result['silhouette']:.3f}")
    if result["adjusted_rand_index_vs_family"] is not None:
        notes.append(f"adjusted Rand index vs family {result['adjusted_rand_index_vs_family']:.3f}")
    distances = result["distances"]
    notes.append(f"{distances['exact']}/{distances['pairs']} distances exact (search budget {distances['max_expansions']:,} expansions per pair)")
    notes.append(f"{elapsed_s:.1f} s")
    console.print("  " + ", ".join(notes))


def assign(
    job: Path = typer.Argument(..., help="Job spec YAML file."),
    clusters: Path = typer.Option(..., "--clusters", "-c", help="clusters.json from `streamtune cluster build`."),
    max_expansions: int = typer.Option(
        DEFAULT_MAX_EXPANSIONS, "--max-expansions", min=0,
        help="Search budget per medoid: at most this many branch-and-bound node expansions in the exact GED "
        "search (a count of work, not seconds; the answer does not depend on the machine's speed). "
        "Out of budget, the bounds are reported instead of an exact distance; 0 = bounds only.",
    ),
    as_json: Optional[str] = json_option("The assignment as JSON (streamtune.cluster-assign/1)."),
) -> None:
    """Name the cluster whose medoid DAG is nearest to the job's DAG, with the distance and whether it is exact."""
    from streamtune_cli.cli.common import console
    from streamtune_cli.history.clusters import assign_spec, load_clusters
    from streamtune_cli.spec import load_spec

    spec = load_spec(job)
    model = load_clusters(clusters)
    result = assign_spec(spec, model, max_expansions)
    data = {"job": spec.name, "file": str(job), **result}
    if as_json is not None and _emit_json(as_json, "streamtune.cluster-assign/1", data):
        return
    exact = "exact" if result["exact"] else f"bounds [{result['lower']:g}, {result['upper']:g}]"
    families = ", ".join(f"{name} {count}" for name, count in result["families"].items())
    console.print(
        f"{spec.name}: cluster [bold]{result['cluster']}[/bold] (medoid {result['medoid_run_id']}), "
        f"graph edit distance {result['distance']:g} ({exact}); cluster families: {families}"
    )


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(history_app, generate, "generate")
    add_command(history_app, add, "add")
    add_command(history_app, stats, "stats")
    app.add_typer(history_app, name="history")
    add_command(cluster_app, build, "build")
    add_command(cluster_app, assign, "assign")
    app.add_typer(cluster_app, name="cluster")
