"""`streamtune gate`: compare a report with a baseline under rules, for CI (exit 0 pass, 1 regression, 2 bad input)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from streamtune_cli.cli.common import json_option

ORDER = 60


def gate(
    report: Path = typer.Argument(..., help="Report JSON written by tune, fuse or bench."),
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Baseline JSON of the same kind (a committed earlier report)."),
    rules: Optional[Path] = typer.Option(
        None, "--rules", "-r", help="Rules YAML (default: the rules shipped with streamtune). Syntax in docs/ci.md."
    ),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here: one testcase per check ('-' is stdout)."),
    summary: Optional[Path] = typer.Option(
        None, "--summary", help="Write a Markdown summary here (append it to $GITHUB_STEP_SUMMARY on GitHub; '-' is stdout)."
    ),
    as_json: Optional[str] = json_option("The verdicts as JSON (streamtune.gate/1)."),
    update_baseline: bool = typer.Option(
        False, "--update-baseline", help="Accept the report as the new baseline (written atomically) and exit 0."
    ),
) -> None:
    """Gate a report against a baseline: a table of every check; exit 1 on a regression, 2 on bad input."""
    from streamtune_cli.cli.common import EXIT_CHECK_FAILED, check_one_stdout, is_stdout, notice_console, write_output
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

    check_one_stdout(junit=junit, summary=summary, json=as_json)
    data_on_stdout = any(is_stdout(p) for p in (junit, summary, as_json))
    console = notice_console(data_on_stdout)
    if rules is None and not DEFAULT_RULES.is_file():
        raise UsageError(f"no default rules at {DEFAULT_RULES} (a broken install?): pass --rules RULES.yaml")
    loaded = load_rules(rules if rules is not None else DEFAULT_RULES)
    report_data = load_json_report(report, "report")
    if update_baseline:
        _update_baseline(report, baseline, loaded, report_data)
        return
    baseline_data = load_json_report(baseline, "baseline")
    result = evaluate(loaded, report_data, baseline_data, report_file=str(report), baseline_file=str(baseline))
    if junit is not None:
        write_output(junit, gate_junit_xml(result))
    if summary is not None:
        write_output(summary, gate_markdown(result))
    if as_json is not None:
        write_output(as_json, {"schema": "streamtune.gate/1", **gate_json(result)})
    if not is_stdout(as_json):
        _print_table(console, gate_table, result)
        console.print(result.kind_line, style="dim", markup=False, highlight=False, soft_wrap=True)
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
    """Write the report as the new baseline, after showing how it compares with the old one (if any).

    Refused: a report of another kind than the old baseline, and a baseline that is a symbolic link (a link
    committed to a repository could point anywhere; update the file it names instead).
    """
    from streamtune_cli.cli.common import console
    from streamtune_cli.errors import SpecError, StreamtuneError, UsageError
    from streamtune_cli.gate import check_same_kind, evaluate, gate_table, load_json_report, report_kind
    from streamtune_cli.io import read_text_bounded, write_text_atomic

    new_kind = report_kind(report_data, str(report))
    if baseline.is_symlink():
        raise UsageError(
            f"--update-baseline: {baseline} is a symbolic link (to {baseline.readlink()}); it is not written through: "
            "name the file it points to, or replace the link with a file"
        )
    if baseline.exists():
        try:
            old = load_json_report(baseline, "baseline")
        except SpecError as exc:
            old = None
            # The old baseline may be what is being fixed (it does not parse); it is replaced, after saying so.
            console.print(f"[yellow]old baseline not comparable:[/yellow] {exc}", soft_wrap=True)
        if old is not None:
            old_kind = report_kind(old, str(baseline))
            try:
                check_same_kind(new_kind, old_kind, str(report), str(baseline))
            except SpecError as exc:
                raise UsageError(f"--update-baseline refused: {exc.problems[0].message}; delete the old baseline first if this is deliberate") from None
            try:
                result = evaluate(loaded, report_data, old, report_file=str(report), baseline_file=str(baseline))
                _print_table(console, gate_table, result)
                console.print(f"against the old baseline: {result.headline}", soft_wrap=True)
            except StreamtuneError as exc:
                # Metrics the old baseline lacks or lost are what an update accepts; the comparison is informative only.
                console.print(f"[yellow]old baseline not comparable:[/yellow] {exc}", soft_wrap=True)
    # The exact report text: the baseline is the report, byte for byte, so a review diff shows real changes.
    # An existing baseline keeps its mode; a read-only one is refused (io.write_text_atomic).
    write_text_atomic(baseline, read_text_bounded(report, "report file"))
    console.print(f"baseline updated: {baseline} (from {report}, {new_kind}); review and commit it deliberately", soft_wrap=True, markup=False)


def _print_table(console, gate_table, result) -> None:  # noqa: ANN001
    # Below 120 columns the rule column would squeeze the metric paths into unreadable folds.
    console.print(gate_table(result, with_rule=console.width >= 120))


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, gate, "gate")
