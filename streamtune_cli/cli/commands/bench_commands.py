"""`streamtune bench`: run a benchmark suite of tuners on the same cases, judged strictly against the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

ORDER = 40


def bench(
    suite: Path = typer.Option(..., "--suite", "-s", help="Bench suite YAML (e.g. configs/bench/quick.yaml)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the full result (runs, aggregates, environment) as JSON."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the result tables as Markdown."),
    tuners: Optional[str] = typer.Option(None, "--tuners", help="Comma-separated tuners to run instead of the suite's (e.g. ds2,conttune)."),
) -> None:
    """Run every tuner on the same cases of a suite and judge them against the oracle.

    cold: each job x rate x regime x seed is tuned from the suite's initial parallelism.
    continuous: each job walks through the rate levels, keeping its deployment and its tuner.
    Tuners see only topology and measurements; a run converges only if it truly keeps up at the peak
    (noise off) and its lag drains within drain_bound_s. Failures are listed by job (docs/benchmarks.md).
    """
    from streamtune_cli.bench import bench_markdown, bench_rich_tables, load_suite, parse_tuner_list, plan_size, run_suite
    from streamtune_cli.cli.common import console, progress_bar, write_json_atomic, write_text_atomic

    loaded = load_suite(suite)
    chosen = parse_tuner_list(tuners, tuple(loaded.suite.variants)) if tuners is not None else None
    with progress_bar(f"bench {loaded.suite.name}", plan_size(loaded, chosen)) as advance:
        result = run_suite(loaded, tuners=chosen, on_run=lambda _row: advance(1))
    for table in bench_rich_tables(result):
        console.print(table)
    console.print(f"{len(result['runs'])} runs in {result['environment']['elapsed_s']:.1f} s")
    if out is not None:
        write_json_atomic(out, result)
        console.print(f"wrote {out}")
    if markdown is not None:
        write_text_atomic(markdown, bench_markdown(result))
        console.print(f"wrote {markdown}")


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, bench, "bench")
