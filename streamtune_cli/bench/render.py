"""Bench results as tables: Markdown for docs and CI summaries, rich for the terminal. Failures are listed
per tuner and job, and infeasible cases with the oracle's reason, so no average hides them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streamtune_cli.bench.aggregate import ORACLE_ROW
from streamtune_cli.report.markdown import fmt_ratio

__all__ = [
    "AGGREGATE_HEADERS",
    "aggregate_table_rows",
    "failure_summary_rows",
    "models_used_rows",
    "bench_markdown",
    "bench_rich_tables",
]

AGGREGATE_HEADERS = [
    "tuner",
    "runs",
    "infeasible",
    "reconfig. mean / max",
    "p/oracle mean / max",
    "final p mean",
    "met (measured)",
    "truly keeps up",
    "final lag mean",
    "drain s max",
    "converged",
    "failed",
]
_NUMERIC = [False] + [True] * (len(AGGREGATE_HEADERS) - 1)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _drain(a: dict[str, Any]) -> str:
    if a.get("never_drains"):
        return f"never ({a['never_drains']})"
    return fmt_ratio(a.get("drain_s_max"), 0)


def aggregate_table_rows(aggregates: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Display rows (AGGREGATE_HEADERS order), the oracle last."""
    names = [n for n in aggregates if n != ORACLE_ROW] + ([ORACLE_ROW] if ORACLE_ROW in aggregates else [])
    rows = []
    for name in names:
        a = aggregates[name]
        rows.append(
            [
                name,
                str(a["runs"]),
                str(a["infeasible_runs"]),
                f"{fmt_ratio(a['reconfigurations_mean'], 2)} / {fmt_ratio(a['reconfigurations_max'], 0)}",
                f"{fmt_ratio(a['ratio_to_oracle_mean'], 2)} / {fmt_ratio(a['ratio_to_oracle_max'], 2)}",
                fmt_ratio(a["final_total_mean"], 1),
                _pct(a["target_met_fraction"]),
                _pct(a["truly_keeps_up_fraction"]),
                fmt_ratio(a["final_lag_mean"], 0),
                _drain(a),
                _pct(a["converged_fraction"]),
                "—" if a["failed_runs"] is None else str(a["failed_runs"]),
            ]
        )
    return rows


def failure_summary_rows(failures: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    """One row per (tuner, job): how many runs failed, and of which kinds."""
    rows = []
    for tuner, items in failures.items():
        by_job: dict[str, Counter] = {}
        for item in items:
            by_job.setdefault(item["job"], Counter())[item["failure"]] += 1
        for job, kinds in sorted(by_job.items()):
            detail = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
            rows.append([tuner, job, str(sum(kinds.values())), detail])
    return rows


def models_used_rows(result: dict[str, Any]) -> list[list[str]]:
    """Per tuner that reports run_info and job: the history cluster its runs used and the families left out."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in result["runs"]:
        info = r.get("tuner_info")
        if info is not None:
            seen.setdefault((r["tuner"], r["job"]), info)
    return [
        [tuner, job, "—" if info.get("cluster") is None else str(info["cluster"]),
         ", ".join(info.get("left_out") or []) or "—", str(info.get("note", ""))]
        for (tuner, job), info in seen.items()
    ]


def _header(result: dict[str, Any]) -> str:
    config = result["config"]
    env = result["environment"]
    continuous = config.get("protocol") == "continuous"
    rates = (
        f"{len(config['rate_levels'])} rate levels in sequence ({', '.join(f'{x:g}' for x in config['rate_levels'])})"
        if continuous
        else f"{len(config['rate_factors'])} rate factors"
    )
    return (
        f"Protocol {config.get('protocol', 'cold')}: {len(result['runs'])} tunings: {len(config['jobs'])} jobs x {rates} x "
        f"{len(config['regimes'])} regimes x {len(config['seeds'])} seeds x {len(config['tuners'])} tuners; "
        f"initial parallelism {config['initial_parallelism']}, at most {config['max_steps']} steps per tuning, "
        f"executor {config.get('executor', 'sim')} {config.get('executor_options') or ''}, drain bound "
        f"{config.get('drain_bound_s', 0):g} s. Took {env['elapsed_s']:.1f} s."
    )


def _per_change_lines(aggregates: dict[str, dict[str, Any]]) -> list[str]:
    figures = [
        f"{name} {a['reconfigurations_per_change_mean']:.2f}"
        for name, a in aggregates.items()
        if name != ORACLE_ROW and a.get("reconfigurations_per_change_mean") is not None
    ]
    return [f"Reconfigurations per rate change (levels after the first): {', '.join(figures)}.", ""] if figures else []


def bench_markdown(result: dict[str, Any]) -> str:
    """The bench as Markdown: overall table, one table per regime, failures by job, infeasible cases."""
    from streamtune_cli.report.markdown import md_cell, md_table

    out = [f"# Benchmark: {md_cell(result['suite'])}", "", _header(result)]
    out += ["", "## All regimes", ""]
    out.append(md_table(AGGREGATE_HEADERS, aggregate_table_rows(result["aggregates"]), numeric=_NUMERIC))
    out += _per_change_lines(result["aggregates"])
    for regime, aggregates in result["by_regime"].items():
        out += [f"## Regime: {md_cell(regime)}", ""]
        out.append(md_table(AGGREGATE_HEADERS, aggregate_table_rows(aggregates), numeric=_NUMERIC))
        out += _per_change_lines(aggregates)
    used = models_used_rows(result)
    if used:
        out += ["## History models used", ""]
        out += ["With `leave_out_family`, a job is tuned only with models of clusters that share no family with",
                "the cluster nearest to it (leave-one-family-out): the models never saw its family.", ""]
        out.append(md_table(["tuner", "job", "cluster used", "families left out", "note"], used,
                            numeric=[False] * 5))
    out += ["## Failures by job", ""]
    failure_rows = failure_summary_rows(result.get("failures", {}))
    if failure_rows:
        out.append(md_table(["tuner", "job", "failed runs", "kinds"], failure_rows, numeric=[False, False, True, False]))
        kinds = result.get("failure_kinds", {})
        out += [f"- **{kind}**: {text}" for kind, text in kinds.items()] + [""]
    else:
        out += ["None: every feasible run converged, keeps up and drained its lag in time.", ""]
    out += ["## Infeasible cases (not averaged in)", ""]
    if result["infeasible"]:
        rows = [
            [c["job"], c["rate_factor"], f"{c['rate_rps']:,.0f}", c["regime"], ", ".join(c["infeasible_operators"]), c["reason"]]
            for c in result["infeasible"]
        ]
        out.append(md_table(["job", "rate factor", "rate rec/s", "regime", "operators", "reason"], rows,
                            numeric=[False, True, True, False, False, False]))
    else:
        out += ["None: the oracle met every target.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# Terminal headers: short, on two lines, so the table fits a CI log without wrapping numbers.
_RICH_COLUMNS = [
    ("tuner", 0),
    ("runs", 1),
    ("reconfig.\nmean / max", 3),
    ("p / oracle\nmean / max", 4),
    ("met\nmeasured", 6),
    ("truly\nkeeps up", 7),
    ("lag\nmean", 8),
    ("drain s\nmax", 9),
    ("conv-\nerged", 10),
    ("failed", 11),
]
# Below this width the aggregate table is shown as two (footprint, then keeping up), so that no column is
# cut on an 80-column terminal.
_SPLIT_BELOW_WIDTH = 110
_NARROW_GROUPS = [
    ("footprint", [0, 1, 3, 4, 10, 11]),
    ("keeping up", [0, 6, 7, 8, 9]),
]


def _table(title: str, caption: str | None = None) -> Any:
    from rich import box
    from rich.table import Table

    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def bench_rich_tables(result: dict[str, Any], width: int | None = None) -> list[Any]:
    """rich Tables: all regimes, then per regime, then failures by job and infeasible cases.

    `width`: the console's; below 110 columns each aggregate table is split in two (footprint, keeping up).
    """
    tables = []
    sections = [("all regimes", result["aggregates"])] + [(f"regime {k}", v) for k, v in result["by_regime"].items()]
    groups = [("", [i for _, i in _RICH_COLUMNS])]
    if width is not None and width < _SPLIT_BELOW_WIDTH:
        groups = [(f", {name}", columns) for name, columns in _NARROW_GROUPS]
    headers = {index: header for header, index in _RICH_COLUMNS}
    for title, aggregates in sections:
        infeasible = sum(a["infeasible_runs"] for a in aggregates.values())
        caption = f"{infeasible} run(s) with an infeasible oracle not averaged in (listed below)" if infeasible else None
        per_change = _per_change_lines(aggregates)
        if per_change:
            caption = " ".join(filter(None, [caption, per_change[0]]))
        for group_title, columns in groups:
            last = columns is groups[-1][1]
            table = _table(
                f"{result['suite']} ({result['config'].get('protocol', 'cold')}): {title}{group_title}",
                caption if last else None,
            )
            for index in columns:
                table.add_column(headers[index], justify="right" if _NUMERIC[index] else "left", no_wrap=True)
            for row in aggregate_table_rows(aggregates):
                table.add_row(*[row[i] for i in columns], style="dim" if row[0] == ORACLE_ROW else None)
            tables.append(table)
    used = models_used_rows(result)
    if used:
        table = _table("history models used (leave_out_family: the job's own family is left out)")
        for header in ("tuner", "job", "cluster used", "left out"):
            table.add_column(header, no_wrap=header in ("tuner", "job"))
        for row in used:
            table.add_row(*row[:4])
        tables.append(table)
    failure_rows = failure_summary_rows(result.get("failures", {}))
    if failure_rows:
        table = _table("failures by job")
        for header in ("tuner", "job", "failed", "kinds"):
            table.add_column(header, no_wrap=header != "kinds")
        for row in failure_rows:
            table.add_row(*row)
        tables.append(table)
    if result["infeasible"]:
        table = _table("infeasible cases (not averaged in)")
        for header in ("job", "rate\nfactor", "regime", "operators", "reason"):
            table.add_column(header, no_wrap=header != "reason")
        for c in result["infeasible"]:
            table.add_row(c["job"], str(c["rate_factor"]), c["regime"], ", ".join(c["infeasible_operators"]), str(c["reason"]))
        tables.append(table)
    return tables
