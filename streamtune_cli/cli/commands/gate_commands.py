"""`streamtune gate`: compare a report with a baseline under rules, for CI (exit 0 pass, 1 regression, 2 bad input)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

ORDER = 60


def gate(
    report: Path = typer.Argument(..., help="Report JSON written by tune, fuse or bench."),
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Baseline JSON of the same kind (a committed earlier report)."),
    rules: Optional[Path] = typer.Option(
        None, "--rules", "-r", help="Rules YAML (default: configs/gates/default.yaml). Syntax in docs/ci.md."
    ),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here: one testcase per check."),
    summary: Optional[Path] = typer.Option(
        None, "--summary", help="Write a Markdown summary here (append it to $GITHUB_STEP_SUMMARY on GitHub)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the verdicts as JSON instead of the table."),
    update_baseline: bool = typer.Option(
        False, "--update-baseline", help="Accept the report as the new baseline (written atomically) and exit 0."
    ),
) -> None:
    """Gate a report against a baseline: a table of every check; exit 1 on a regression, 2 on bad input."""
    import json

    from streamtune_cli.cli.common import EXIT_CHECK_FAILED, console, write_text_atomic
    from streamtune_cli.errors import UsageError
    from streamtune_cli.gate import (
        DEFAULT_RULES,
        evaluate,
        failure_lines,
        gate_json,
        gate_junit_xml,
        gate_markdown,
        gate_table,
        load_json_report,
        skipped_line,
    )
    from streamtune_cli.gate_rules import load_rules

    if rules is None and not DEFAULT_RULES.is_file():
        raise UsageError(f"no default rules at {DEFAULT_RULES} (an installed copy has none): pass --rules RULES.yaml")
    loaded = load_rules(rules if rules is not None else DEFAULT_RULES)
    report_data = load_json_report(report, "report")
    if update_baseline:
        _update_baseline(report, baseline, loaded, report_data)
        return
    baseline_data = load_json_report(baseline, "baseline")
    result = evaluate(loaded, report_data, baseline_data, report_file=str(report), baseline_file=str(baseline))
    if junit is not None:
        write_text_atomic(junit, gate_junit_xml(result))
    if summary is not None:
        write_text_atomic(summary, gate_markdown(result))
    if as_json:
        typer.echo(json.dumps(gate_json(result), indent=2))
    else:
        _print_table(console, gate_table, result)
        for line in failure_lines(result):
            console.print("regression: " + line, style="red", markup=False, highlight=False, soft_wrap=True)
        skipped = skipped_line(result)
        if skipped:
            console.print(skipped, style="dim", markup=False, soft_wrap=True)
        style = "green" if result.passed else "bold red"
        console.print(f"[{style}]{result.headline}[/{style}]", soft_wrap=True)
    if not result.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _update_baseline(report: Path, baseline: Path, loaded, report_data) -> None:  # noqa: ANN001
    """Write the report as the new baseline, after showing how it compares with the old one (if any)."""
    from streamtune_cli.cli.common import console, write_text_atomic
    from streamtune_cli.errors import StreamtuneError
    from streamtune_cli.gate import evaluate, gate_table, load_json_report

    if baseline.exists():
        try:
            old = load_json_report(baseline, "baseline")
            result = evaluate(loaded, report_data, old, report_file=str(report), baseline_file=str(baseline))
            _print_table(console, gate_table, result)
            console.print(f"against the old baseline: {result.headline}", soft_wrap=True)
        except StreamtuneError as exc:
            # The old baseline may be what is being fixed; the comparison is informative only.
            console.print(f"[yellow]old baseline not comparable:[/yellow] {exc}", soft_wrap=True)
    # The exact report text: the baseline is the report, byte for byte, so a review diff shows real changes.
    mode = baseline.stat().st_mode & 0o777 if baseline.exists() else None
    write_text_atomic(baseline, report.read_text(encoding="utf-8"))
    if mode is not None:  # an existing baseline keeps its mode (write_text_atomic gives new files the umask's)
        os.chmod(baseline, mode)
    console.print(f"baseline updated: {baseline} (from {report}); review and commit it deliberately", soft_wrap=True)


def _print_table(console, gate_table, result) -> None:  # noqa: ANN001
    # Below 120 columns the rule column would squeeze the metric paths into unreadable folds.
    console.print(gate_table(result, with_rule=console.width >= 120))


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, gate, "gate")
