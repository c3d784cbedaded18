"""`streamtune bench`: run a benchmark suite of tuners on the same cases, judged strictly against the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from streamtune_cli.cli.common import OPTIONAL_PATH

ORDER = 40


def bench(
    suite: Path = typer.Option(..., "--suite", "-s", help="Bench suite YAML (e.g. configs/bench/quick.yaml)."),
    out: Optional[str] = typer.Option(
        None, "--out", "-o", metavar="PATH",
        help="Write the full result (runs, aggregates, environment) as JSON, schema streamtune.bench/2 ('-': stdout).",
    ),
    json_alias: Optional[str] = typer.Option(None, "--json", metavar=OPTIONAL_PATH, hidden=True, help="Same as --out."),
    markdown: Optional[str] = typer.Option(
        None, "--markdown", metavar="PATH", help="Write the result tables as Markdown ('-': stdout)."
    ),
    tuners: Optional[str] = typer.Option(None, "--tuners", help="Comma-separated tuners to run instead of the suite's (e.g. ds2,conttune)."),
) -> None:
    """Run every tuner on the same cases of a suite and judge them against the oracle.

    cold: each job x rate x regime x seed is tuned from the suite's initial parallelism.
    continuous: each job walks through the rate levels, keeping its deployment and its tuner.
    Tuners see only topology and measurements; a run converges only if it truly keeps up at the peak
    (noise off) and its lag drains within drain_bound_s. Failures are listed by job (docs/benchmarks.md).
    """
    from streamtune_cli.bench import bench_markdown, bench_rich_tables, load_suite, parse_tuner_list, plan_size, run_suite
    from streamtune_cli.cli.common import check_one_stdout, is_stdout, notice_console, print_written, progress_bar, write_output
    from streamtune_cli.cli.commands.tuning_commands import _one_of

    out = _one_of(out, "--out", json_alias, "--json")
    check_one_stdout(out=out, markdown=markdown)
    on_stdout = is_stdout(out) or is_stdout(markdown)
    console = notice_console(on_stdout)
    loaded = load_suite(suite)
    chosen = parse_tuner_list(tuners, tuple(loaded.suite.variants)) if tuners is not None else None
    with progress_bar(f"bench {loaded.suite.name}", plan_size(loaded, chosen)) as advance:
        result = run_suite(loaded, tuners=chosen, on_run=lambda _row: advance(1))
    for table in bench_rich_tables(result, width=console.width):
        console.print(table)
    console.print(f"{len(result['runs'])} runs in {result['environment']['elapsed_s']:.1f} s")
    written = []
    if out is not None:
        written.append(write_output(out, result))
    if markdown is not None:
        written.append(write_output(markdown, bench_markdown(result)))
    print_written(written, on_stdout)


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, bench, "bench")
