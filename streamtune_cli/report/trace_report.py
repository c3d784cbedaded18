"""Tuning-trace reports: trace.json, summary.json (what CI gates read), report.md (Mermaid DAG) and a
self-contained report.html with plots (parallelism per step, achieved vs target rate with the lag, heat maps
of backpressure and busy time), written as one set with a manifest (docs/reports.md).

A report must not mislead: a run that failed (target not met at the peak, a stalled loop, a partial trace)
says so at the top of both documents, in words and colour, before any number.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from streamtune_cli.definitions import BACKPRESSURE_THRESHOLD, BUSY_THRESHOLD
from streamtune_cli.errors import Location, Problem, SpecError
from streamtune_cli.executors.base import Observation, Trace, TraceStep
from streamtune_cli.io import OutputError, fsync_dir, process_alive
from streamtune_cli.report.html import esc, figure_data_uri, html_banner, html_page, html_table, img_tag, new_figure
from streamtune_cli.report.markdown import fmt_compact, fmt_number, fmt_ratio, md_cell, md_table
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec

__all__ = [
    "BUSY_SATURATED",
    "BACKPRESSURED_MIN",
    "REPORT_FILES",
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA",
    "SUMMARY_SCHEMA",
    "Outcome",
    "trace_summary",
    "trace_outcome",
    "step_bottlenecks",
    "trace_markdown",
    "trace_html",
    "parallelism_figure",
    "rates_figure",
    "heatmap_figure",
    "write_trace_reports",
    "write_report_set",
    "read_report_set",
]

# An operator at >= 90% busy has no headroom left (DS2/Flink practice, see DESIGN "Bottleneck label");
# 5% of the window blocked on output is well above what measurement noise alone reports.
BUSY_SATURATED = BUSY_THRESHOLD
BACKPRESSURED_MIN = BACKPRESSURE_THRESHOLD

Oracle = dict[str, int]

# summary.json's kind for `streamtune gate` (the same as `tune --json`, which prints these fields and more).
SUMMARY_SCHEMA = "streamtune.tune-summary/1"


def _total(parallelism: dict[str, int]) -> int:
    return int(sum(parallelism.values()))


def _reconfigurations(trace: Trace) -> int:
    return sum(1 for prev, cur in zip(trace.steps, trace.steps[1:]) if cur.parallelism != prev.parallelism)


def trace_summary(trace: Trace, oracle: Oracle | None = None) -> dict[str, Any]:
    """The numbers a CI gate compares: footprint, reconfigurations, whether the target was met, vs the oracle.

    The tuning loop's own bookkeeping (Trace.meta) wins where present; otherwise the values are derived
    from the steps (reconfiguration = deployed parallelism changed between consecutive steps).
    """
    meta = trace.meta
    steps = trace.steps
    last_obs = steps[-1].observation if steps else None
    if "final_parallelism" in meta:
        final = {k: int(v) for k, v in meta["final_parallelism"].items()}
    else:
        final = dict(steps[-1].parallelism) if steps else {}
    converged = meta.get("converged")
    if converged is None:
        last_decision = steps[-1].decision if steps else None
        converged = bool(last_decision and last_decision.converged)
    target_met = meta.get("target_met")
    if target_met is None:
        target_met = bool(last_obs is not None and not last_obs.backpressured)
    summary: dict[str, Any] = {
        "schema": SUMMARY_SCHEMA,
        "job": trace.job,
        "executor": trace.executor,
        "tuner": trace.tuner,
        "seed": trace.seed,
        "steps": len(steps),
        "reconfigurations": int(meta.get("reconfigurations", _reconfigurations(trace))),
        "converged": bool(converged),
        "target_met": bool(target_met),
        "backpressured_windows": int(
            meta.get("backpressured_windows", sum(1 for s in steps if s.observation.backpressured))
        ),
        "stop_reason": meta.get("stop_reason"),
        "initial_total_parallelism": _total(steps[0].parallelism) if steps else None,
        "final_total_parallelism": _total(final),
        "final_parallelism": final,
        "final_target_rate_rps": last_obs.target_rate_rps if last_obs else None,
        "final_achieved_rate_rps": last_obs.achieved_rate_rps if last_obs else None,
        "final_lag_records": last_obs.lag_records if last_obs else None,
        "final_drain_s": _final_drain(meta, last_obs),
    }
    if oracle is not None:
        oracle_total = _total(oracle)
        summary["oracle_parallelism"] = {k: int(v) for k, v in oracle.items()}
        summary["oracle_total_parallelism"] = oracle_total
        summary["final_over_oracle"] = summary["final_total_parallelism"] / oracle_total if oracle_total else None
        # The loop records whether the oracle could meet the target; a ratio against an infeasible one misleads.
        loop_oracle = meta.get("oracle")
        summary["oracle_feasible"] = loop_oracle.get("feasible") if isinstance(loop_oracle, dict) else None
    return summary


def _final_drain(meta: dict[str, Any], last_obs: Observation | None) -> float | None:
    if "final_drain_s" in meta:
        return meta["final_drain_s"]
    if last_obs is None:
        return None
    from streamtune_cli.definitions import measured_drain_s

    return measured_drain_s(last_obs.lag_records, last_obs.achieved_rate_rps, last_obs.target_rate_rps)


def _fmt_drain(summary: dict[str, Any]) -> str:
    if summary["final_drain_s"] is not None:
        return f"{summary['final_drain_s']:,.0f} s"
    return "—" if summary["final_lag_records"] is None else "not draining (no spare rate in the last window)"


def _graph(trace: Trace) -> JobGraph | None:
    try:
        return JobGraph(JobSpec.model_validate(trace.spec))
    except Exception:  # a trace from an older or foreign tool still gets a report, just without the DAG
        return None


def _operator_order(trace: Trace, graph: JobGraph | None) -> list[str]:
    if graph is not None:
        return list(graph.topological_order)
    seen: dict[str, None] = {}
    for step in trace.steps:
        for op_id in step.parallelism:
            seen.setdefault(op_id, None)
    return list(seen)


def _saturated(obs: Observation) -> set[str]:
    return {op for op, m in obs.operators.items() if m.busy_max >= BUSY_SATURATED}


def step_bottlenecks(graph: JobGraph | None, obs: Observation) -> tuple[list[str], list[str]]:
    """(bottleneck, backpressured) operator ids of one window, by definitions.bottleneck_labels.

    Only a window that misses its target shows bottlenecks; in a window that keeps up (even one catching
    up at full speed) a saturated operator is merely at capacity, which the report says separately.
    """
    import networkx as nx

    from streamtune_cli.definitions import bottleneck_labels

    ops = obs.operators
    backpressured = sorted(op for op, m in ops.items() if m.backpressured_max >= BACKPRESSURED_MIN)
    if obs.keeps_up:
        return [], backpressured
    labels = bottleneck_labels(graph.nx if graph is not None else nx.DiGraph(), ops)
    order = graph.topological_order if graph is not None else sorted(ops)
    return [op for op in order if labels.get(op)], backpressured


def _at_capacity(graph: JobGraph | None, obs: Observation) -> str:
    order = graph.topological_order if graph is not None else sorted(obs.operators)
    full = [op for op in order if op in _saturated(obs)]
    return f"none (at capacity: {', '.join(full)})" if full else "—"


def _step_rows(trace: Trace, graph: JobGraph | None) -> list[list[Any]]:
    rows = []
    for step in trace.steps:
        obs = step.observation
        bottlenecks, backpressured = step_bottlenecks(graph, obs)
        rows.append(
            [
                step.step,
                _total(step.parallelism),
                fmt_number(obs.achieved_rate_rps),
                fmt_number(obs.target_rate_rps),
                fmt_number(obs.lag_records),
                ", ".join(bottlenecks) or _at_capacity(graph, obs),
                ", ".join(backpressured) or "—",
                step.decision.summary if step.decision else "",
            ]
        )
    return rows


_STEP_HEADERS = ["step", "total p", "achieved rec/s", "target rec/s", "lag records", "bottleneck", "backpressured", "decision"]
_STEP_NUMERIC = [True, True, True, True, True, False, False, False]


def _decision_rows(step: TraceStep) -> list[list[Any]]:
    assert step.decision is not None
    decision = step.decision
    op_ids = list(dict.fromkeys([*step.parallelism, *decision.parallelism, *decision.reasons]))
    rows = []
    for op in op_ids:
        before, after = step.parallelism.get(op), decision.parallelism.get(op)
        change = "" if before == after or before is None or after is None else ("▲" if after > before else "▼")
        rows.append([op, fmt_number(before), fmt_number(after), change, decision.reasons.get(op, "")])
    return rows


_DECISION_HEADERS = ["operator", "deployed p", "proposed p", "", "reason"]
_DECISION_NUMERIC = [False, True, True, False, False]


def _initial_final(trace: Trace, summary: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    initial = dict(trace.steps[0].parallelism) if trace.steps else {}
    return initial, summary["final_parallelism"]


def _operator_rows(order: list[str], graph: JobGraph | None, initial: dict, final: dict, oracle: Oracle | None) -> list[list[Any]]:
    rows = []
    for op in order:
        kind = graph.operator(op).kind.value if graph is not None else ""
        row = [op, kind, fmt_number(initial.get(op)), fmt_number(final.get(op))]
        if oracle is not None:
            row.append(fmt_number(oracle.get(op)))
        rows.append(row)
    return rows




# ---- outcome ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the top of a report states it.

    status: `failed` (the target was not met at the peak, the loop stalled, or the trace is partial or
    empty), `warning` (the target was met, but the loop did not converge or the lag is not draining),
    `ok`, or `info` (a dry run: one recommendation, nothing redeployed, so neither).
    """

    status: str
    headline: str
    details: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status == "failed"


# The most of an error message a banner quotes: it is a headline, the trace holds the whole text.
_ERROR_EXCERPT = 300


def _peak_target(trace: Trace) -> float | None:
    """The schedule's peak as the loop recorded it; for an older trace, the highest target it observed."""
    peak = trace.meta.get("peak_target_rate_rps")
    if isinstance(peak, (int, float)) and not isinstance(peak, bool):
        return float(peak)
    targets = [s.observation.target_rate_rps for s in trace.steps]
    return max(targets) if targets else None


def _excerpt(text: str, limit: int = _ERROR_EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _lag_detail(summary: dict[str, Any]) -> str | None:
    lag = summary["final_lag_records"]
    if lag is None:
        return None
    if lag <= 0:
        return "no lag at the end"
    return f"lag at the end: {fmt_number(lag)} records; time to drain it, as measured: {_fmt_drain(summary)}"


def trace_outcome(trace: Trace, summary: dict[str, Any] | None = None) -> Outcome:
    """Failed, warning, ok or info, with a one-line headline and the facts behind it.

    Failure is what `tune` treats as one: the job does not keep up at the peak at the end, or the loop
    stalled; a partial trace (the session ended with an error) and a trace without windows fail too.
    """
    summary = summary if summary is not None else trace_summary(trace)
    meta = trace.meta
    peak = _peak_target(trace)
    peak_text = f"{fmt_number(peak)} rec/s" if peak is not None else "the peak"
    if meta.get("partial"):
        error = _excerpt(str(meta.get("error") or "no error message was recorded"))
        count = len(trace.steps)
        return Outcome(
            "failed",
            f"Partial trace: the session ended with an error after {count} window(s); nothing here is a result",
            (f"error: {error}",),
        )
    if not trace.steps:
        return Outcome("failed", "No measurement window was recorded", ())
    stop = summary["stop_reason"]
    last = trace.steps[-1].observation
    lag = _lag_detail(summary)
    stop_line = f"stop: {stop}" + (f" ({meta['stop_detail']})" if meta.get("stop_detail") else "") if stop else None
    if stop == "dry_run":
        observed = f"observed {fmt_number(last.achieved_rate_rps)} of {fmt_number(last.target_rate_rps)} rec/s"
        return Outcome("info", "Dry run: one window observed and one recommendation made; nothing was redeployed", (observed,))
    problems: list[str] = []
    details: list[str] = []
    if not summary["target_met"]:
        problems.append(f"target not met at the peak ({peak_text})")
        share = last.achieved_rate_rps / last.target_rate_rps if last.target_rate_rps else 0.0
        if last.keeps_up:
            details.append(
                f"the last window kept up at {fmt_number(last.target_rate_rps)} rec/s, but its busiest operator has "
                f"no headroom for the peak of {peak_text}"
            )
        else:
            details.append(
                f"the last window ingested {fmt_number(last.achieved_rate_rps)} of {fmt_number(last.target_rate_rps)} "
                f"rec/s ({share:.0%})"
            )
    if stop == "stalled":
        problems.append("the tuning loop stalled")
    if problems:
        headline = "; ".join(problems)
        return Outcome("failed", headline[0].upper() + headline[1:], tuple(x for x in (*details, stop_line, lag) if x))
    ok_line = (
        f"Target met at the peak ({peak_text}) with total parallelism {summary['final_total_parallelism']}, "
        f"after {summary['reconfigurations']} reconfiguration(s)"
    )
    warnings: list[str] = []
    if not summary["converged"]:
        warnings.append(f"the loop did not converge (stop: {stop or 'unknown'})")
    if summary["final_lag_records"] and summary["final_lag_records"] > 0 and summary["final_drain_s"] is None:
        warnings.append("the lag is not draining")
    if warnings:
        return Outcome("warning", ok_line + ", but " + " and ".join(warnings), tuple(x for x in (stop_line, lag) if x))
    return Outcome("ok", ok_line, tuple(x for x in (stop_line, lag) if x))


# GitHub renders these block quotes as coloured alerts; elsewhere they stay a readable quote.
_MARKDOWN_ALERT = {"failed": "CAUTION", "warning": "WARNING", "ok": "TIP", "info": "NOTE"}
_STATUS_WORD = {"failed": "FAILED", "warning": "WARNING", "ok": "OK", "info": "NOTE"}


def _markdown_outcome(outcome: Outcome) -> list[str]:
    lines = [f"> [!{_MARKDOWN_ALERT[outcome.status]}]", f"> **{_STATUS_WORD[outcome.status]}**: {md_cell(outcome.headline)}"]
    lines += [f"> - {md_cell(detail)}" for detail in outcome.details]
    return lines + [""]


def _meta_rows(trace: Trace, summary: dict[str, Any]) -> list[list[Any]]:
    peak = _peak_target(trace)
    peak_text = "the peak" if peak is None else f"the peak ({fmt_number(peak)} rec/s)"
    rows = [
        ["job", trace.job],
        ["executor", trace.executor],
        ["tuner", trace.tuner],
        ["seed", "—" if trace.seed is None else trace.seed],
        ["steps", summary["steps"]],
        ["reconfigurations", summary["reconfigurations"]],
        ["converged", "yes" if summary["converged"] else "no"],
        [f"target met at {peak_text}", "yes" if summary["target_met"] else "no"],
        ["backpressured windows", summary["backpressured_windows"]],
        ["lag at the end (records)", fmt_number(summary["final_lag_records"])],
        ["time to drain it, as measured", _fmt_drain(summary)],
        ["stop reason", summary["stop_reason"] or "—"],
        ["total parallelism", f"{fmt_number(summary['initial_total_parallelism'])} → {summary['final_total_parallelism']}"],
    ]
    if "oracle_total_parallelism" in summary:
        rows.append(["oracle total parallelism", summary["oracle_total_parallelism"]])
        rows.append(["final / oracle", fmt_ratio(summary["final_over_oracle"])])
    return rows


def _name_lines(op: Any) -> list[str]:
    """The operator's name above its id, when the spec gives it one."""
    return [op.display_name] if op.display_name != op.id else []


def trace_markdown(trace: Trace, oracle: Oracle | None = None, *, set_id: str | None = None) -> str:
    """report.md: outcome, metadata, a Mermaid DAG with initial -> final (and oracle) parallelism, steps,
    decisions; `set_id` names the report set in a last line (see write_trace_reports)."""
    from streamtune_cli.report.mermaid import mermaid_flowchart

    summary = trace_summary(trace, oracle)
    outcome = trace_outcome(trace, summary)
    graph = _graph(trace)
    order = _operator_order(trace, graph)
    initial, final = _initial_final(trace, summary)
    out = [f"# Tuning report: {md_cell(trace.job)}", ""]
    out += _markdown_outcome(outcome)
    out.append(md_table(["", "value"], _meta_rows(trace, summary)))

    out += ["## Job DAG", ""]
    if graph is not None:

        def node_label(op: Any) -> list[str]:
            lines = _name_lines(op) + [
                f"{op.id} · {op.kind.value}",
                f"p: {fmt_number(initial.get(op.id))} → {fmt_number(final.get(op.id))}",
            ]
            if oracle is not None:
                lines.append(f"oracle: {fmt_number(oracle.get(op.id))}")
            return lines

        out += ["```mermaid", mermaid_flowchart(graph, node_label=node_label).rstrip("\n"), "```", ""]
    else:
        out += ["_The trace's spec could not be rebuilt into a DAG._", ""]
    headers = ["operator", "kind", "initial p", "final p"] + (["oracle p"] if oracle is not None else [])
    out.append(md_table(headers, _operator_rows(order, graph, initial, final, oracle), numeric=[False, False, True, True, True][: len(headers)]))

    out += ["## Steps", ""]
    if trace.steps:
        out.append(md_table(_STEP_HEADERS, _step_rows(trace, graph), numeric=_STEP_NUMERIC))
    else:
        out += ["_No steps were recorded._", ""]

    out += ["## Decisions", ""]
    decided = [s for s in trace.steps if s.decision is not None]
    if not decided:
        out += ["_No decisions were recorded._", ""]
    for step in decided:
        assert step.decision is not None
        converged = " (converged)" if step.decision.converged else ""
        out += [f"### Step {step.step}{converged}: {md_cell(step.decision.summary) or 'no summary'}", ""]
        out.append(md_table(_DECISION_HEADERS, _decision_rows(step), numeric=_DECISION_NUMERIC))
    if set_id is not None:
        out += ["---", "", f"_Report set `{set_id}`: {MANIFEST_NAME} lists every file of this set._", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# ---- plots ------------------------------------------------------------------------------------------

# Parallelism lines that coincide are drawn nested, the first (widest) at the back: every line stays
# visible at its exact integer value, with no offset that would make 5 read as 4.8.
_WIDEST_LINE = 7.0
_THINNEST_LINE = 1.4
_FAILED_RED = "#cf222e"
_PEAK_COLOUR = "#8250df"


def _line_widths(count: int) -> list[float]:
    if count <= 1:
        return [2.0]
    step = min(1.1, (_WIDEST_LINE - _THINNEST_LINE) / (count - 1))
    return [_THINNEST_LINE + step * (count - 1 - i) for i in range(count)]


def _colour(index: int, count: int) -> Any:
    if count <= 10:
        return f"C{index}"
    from matplotlib import colormaps

    return colormaps["tab20"](index % 20)


def _compact_axis(axis: Any) -> None:
    """Tick labels as 400k / 1.2M: the unit sits in the axis label, never a "1e6" offset above the axis."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _pos: fmt_compact(value)))


def parallelism_figure(trace: Trace, order: list[str], oracle: Oracle | None = None):  # noqa: ANN201 - a matplotlib Figure
    """One step line per operator over the steps, at exact integers; the oracle as a last column."""
    import math

    from matplotlib.ticker import MaxNLocator

    fig = new_figure(8.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    count = len(trace.steps)
    # Step k is deployed over [k - 0.5, k + 0.5]: its value is read at its own tick, with no slope.
    edges = [k - 0.5 for k in range(count)] + [count - 0.5]
    widths = _line_widths(len(order))
    highest = 1
    for i, op in enumerate(order):
        values = [s.parallelism.get(op, math.nan) for s in trace.steps]
        highest = max([highest, *(v for v in values if not math.isnan(v))])
        colour = _colour(i, len(order))
        ax.step(edges, values + [values[-1]], where="post", label=op, linewidth=widths[i], color=colour,
                solid_capstyle="butt", zorder=2 + i)
        if oracle is not None and op in oracle:
            highest = max(highest, oracle[op])
            ax.plot([count], [oracle[op]], marker="_", markersize=22, markeredgewidth=widths[i], color=colour,
                    linestyle="none", zorder=2 + i)
    labels = [str(s.step) for s in trace.steps]
    ticks = list(range(count))
    if oracle is not None:
        ticks.append(count)
        labels.append("oracle")
    ax.set_xticks(ticks, labels=labels)
    ax.set_xlim(-0.6, ticks[-1] + 0.6)
    ax.set_ylim(0, highest + max(1, round(highest * 0.08)))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("parallelism (instances)")
    ax.set_title("Parallelism per operator and step")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return fig


def _reconfiguration_gaps(trace: Trace) -> list[tuple[float, float]]:
    """(end of one window, start of the next) wherever the deployment changed between them."""
    gaps = []
    for prev, cur in zip(trace.steps, trace.steps[1:]):
        if cur.parallelism != prev.parallelism:
            start = prev.observation.t_s
            gaps.append((start, max(start, cur.observation.t_s - cur.observation.window_s)))
    return gaps


def rates_figure(trace: Trace, peak_rps: float | None):  # noqa: ANN201 - a matplotlib Figure
    """Achieved and target rate per measurement window over time, the peak target, reconfigurations, lag.

    A window's rates are averages over the window, so each is a flat segment over its own time span: the
    plot never draws a line through a restart, where nothing was measured.
    """
    from matplotlib.ticker import FuncFormatter

    fig = new_figure(8.5, 5.0)
    rate_ax, lag_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.5], "hspace": 0.12})
    highest = peak_rps or 0.0
    for i, step in enumerate(trace.steps):
        obs = step.observation
        start, end = obs.t_s - obs.window_s, obs.t_s
        rate_ax.hlines(obs.target_rate_rps, start, end, colors="0.3", linestyles=(0, (4, 2)), linewidth=1.6,
                       label="target (window mean)" if i == 0 else None, zorder=3)
        rate_ax.hlines(obs.achieved_rate_rps, start, end, colors="C0", linewidth=3.0,
                       label="achieved (window mean)" if i == 0 else None, zorder=4)
        if not obs.keeps_up:
            rate_ax.plot([(start + end) / 2], [obs.achieved_rate_rps], marker="v", color=_FAILED_RED, linestyle="none",
                         label="window missed its target" if not any(not s.observation.keeps_up for s in trace.steps[:i]) else None,
                         zorder=5)
        rate_ax.text((start + end) / 2, 1.01, str(step.step), transform=rate_ax.get_xaxis_transform(), ha="center",
                     va="bottom", fontsize=8, color="0.35")
        highest = max(highest, obs.target_rate_rps, obs.achieved_rate_rps)
    if peak_rps is not None:
        rate_ax.axhline(peak_rps, color=_PEAK_COLOUR, linestyle="-.", linewidth=1.3,
                        label=f"peak target ({fmt_compact(peak_rps)} rec/s)", zorder=2)
    for k, (start, end) in enumerate(_reconfiguration_gaps(trace)):
        for ax in (rate_ax, lag_ax):
            label = "reconfiguration (restart, not measured)" if k == 0 and ax is rate_ax else None
            if end > start:
                ax.axvspan(start, end, color="#d4a72c", alpha=0.22, linewidth=0, label=label, zorder=1)
            else:
                ax.axvline(start, color="#d4a72c", linewidth=2, label=label, zorder=1)
    rate_ax.set_ylim(0, highest * 1.12 if highest > 0 else 1)
    _compact_axis(rate_ax.yaxis)
    rate_ax.set_ylabel("source rate (rec/s)")
    rate_ax.set_title("Achieved vs target source rate per window (numbers: step)", pad=14)
    rate_ax.grid(axis="y", alpha=0.3)
    rate_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)

    times = [s.observation.t_s for s in trace.steps]
    lags = [s.observation.lag_records for s in trace.steps]
    lag_ax.vlines(times, 0, lags, colors="C1", linewidth=2)
    lag_ax.plot(times, lags, "o", color="C1", label="lag at the window's end")
    lag_ax.set_ylim(0, max(lags) * 1.15 if max(lags) > 0 else 1)
    _compact_axis(lag_ax.yaxis)
    lag_ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: fmt_number(value)))
    lag_ax.set_ylabel("lag (records)")
    lag_ax.set_xlabel("time since the first deployment (s)")
    lag_ax.grid(axis="y", alpha=0.3)
    lag_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def heatmap_figure(trace: Trace, order: list[str], metric: str, title: str, colorbar_label: str, cmap: str):  # noqa: ANN201
    """One metric per operator and step, in % of the window: colour and cell text show the same number."""
    import numpy as np

    values = np.array(
        [
            [getattr(s.observation.operators[op], metric) * 100 if op in s.observation.operators else np.nan for s in trace.steps]
            for op in order
        ]
    )
    fig = new_figure(max(5.0, min(12.0, 2.8 + 0.5 * len(trace.steps))), max(2.2, 0.9 + 0.35 * len(order)))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=0.0, vmax=100.0, interpolation="nearest")
    ax.set_yticks(range(len(order)), labels=order, fontsize=8)
    ax.set_xticks(range(len(trace.steps)), labels=[str(s.step) for s in trace.steps], fontsize=8)
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    if values.size <= 400:
        for (row, col), value in np.ndenumerate(values):
            if np.isnan(value):
                continue
            colour = "white" if value > 55 else "black"
            ax.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=7, color=colour)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    colorbar.set_label(colorbar_label, fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    return fig


def _dag_layers(graph: JobGraph) -> list[list[str]]:
    """Operators by topological generation, each layer ordered to reduce edge crossings (barycenter sweeps)."""
    import networkx as nx

    layers = [sorted(layer) for layer in nx.topological_generations(graph.nx)]

    def sweep(order: range, neighbours) -> None:  # noqa: ANN001
        for i in order:
            for j in (i - 1, i + 1):
                if not 0 <= j < len(layers) or (j > i) != (neighbours is graph.nx.successors):
                    continue
                rank = {op: k for k, op in enumerate(layers[j])}
                def key(op: str) -> tuple[float, str]:
                    near = [rank[n] for n in neighbours(op) if n in rank]
                    return (sum(near) / len(near) if near else float("inf"), op)
                layers[i].sort(key=key)

    sweep(range(1, len(layers)), graph.nx.predecessors)
    sweep(range(len(layers) - 2, -1, -1), graph.nx.successors)
    sweep(range(1, len(layers)), graph.nx.predecessors)
    return layers


def _plot_dag(graph: JobGraph, initial: dict[str, int], final: dict[str, int], oracle: Oracle | None) -> str:
    import networkx as nx

    labels = {}
    for op_id in graph.topological_order:
        op = graph.operator(op_id)
        # matplotlib reads text between two `$` as math: a name such as Flink's `count1$0 ... w$` would not render.
        names = [name.replace("$", r"\$") for name in _name_lines(op)]
        lines = names + [op_id, op.kind.value, f"p: {fmt_number(initial.get(op_id))} → {fmt_number(final.get(op_id))}"]
        text = "\n".join(lines)
        if oracle is not None:
            text += f"\noracle: {fmt_number(oracle.get(op_id))}"
        labels[op_id] = text
    font_pt = 7
    # Square nodes sized to the longest label line (~0.6 em per character) so no label spills out.
    longest = max(len(line) for text in labels.values() for line in text.splitlines())
    most_lines = max(len(text.splitlines()) for text in labels.values())
    side_pt = max(48.0, 0.62 * font_pt * longest + 10, 1.3 * font_pt * most_lines + 10)
    side_in = side_pt / 72
    layers = _dag_layers(graph)
    widest = max(len(layer) for layer in layers)
    positions = {}
    for x, layer in enumerate(layers):
        for k, op_id in enumerate(layer):
            positions[op_id] = (float(x), (len(layer) - 1) / 2 - k)
    fig = new_figure(len(layers) * (side_in + 1.1) + 0.4, widest * (side_in + 0.45) + 0.4)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(-0.5, len(layers) - 0.5)
    ax.set_ylim(-widest / 2, widest / 2)
    node_size = side_pt**2
    # networkx shrinks arrows by a square's half-diagonal; half the area ends them at the box's side instead.
    nx.draw_networkx_edges(
        graph.nx, positions, ax=ax, arrows=True, arrowsize=12, edge_color="0.45", node_size=node_size / 2, node_shape="s"
    )
    nx.draw_networkx_nodes(
        graph.nx, positions, ax=ax, node_color="#dbe9f6", edgecolors="#4a78a8", node_size=node_size, node_shape="s"
    )
    nx.draw_networkx_labels(graph.nx, positions, labels=labels, ax=ax, font_size=font_pt)
    edge_labels = {(u, v): graph.edge(u, v).partitioning.value for u, v in graph.nx.edges}
    nx.draw_networkx_edge_labels(graph.nx, positions, edge_labels=edge_labels, ax=ax, font_size=6, node_size=node_size)
    return figure_data_uri(fig)


def trace_html(trace: Trace, oracle: Oracle | None = None, *, set_id: str | None = None) -> str:
    """report.html: the Markdown report's content plus plots, in one file that needs no network or scripts.

    The outcome banner comes first and the page title starts with it, so a failed run never looks like a
    good one, not even as a browser tab.
    """
    from streamtune_cli.report.mermaid import mermaid_flowchart

    summary = trace_summary(trace, oracle)
    outcome = trace_outcome(trace, summary)
    graph = _graph(trace)
    order = _operator_order(trace, graph)
    initial, final = _initial_final(trace, summary)
    body = [
        f"<h1>Tuning report: {esc(trace.job)}</h1>",
        html_banner(outcome.status, outcome.headline, outcome.details),
        html_table(["", "value"], _meta_rows(trace, summary), css_class="meta"),
    ]

    body.append("<h2>Job DAG</h2>")
    if graph is not None:
        body.append(img_tag(_plot_dag(graph, initial, final, oracle), "job DAG", "Operators with initial → final parallelism"))
    headers = ["operator", "kind", "initial p", "final p"] + (["oracle p"] if oracle is not None else [])
    body.append(html_table(headers, _operator_rows(order, graph, initial, final, oracle), numeric=[False, False, True, True, True][: len(headers)]))
    if graph is not None:
        mermaid = mermaid_flowchart(graph)
        body.append(f"<details><summary>Mermaid source</summary><pre>{esc(mermaid)}</pre></details>")

    body.append("<h2>Steps</h2>")
    if trace.steps:
        caption = "Deployed parallelism per operator and step, at exact integers; where operators share a value their lines are nested (the wider line behind)"
        if oracle is not None:
            caption += f"; last column: the oracle (total {summary['oracle_total_parallelism']})"
        body.append(img_tag(figure_data_uri(parallelism_figure(trace, order, oracle)), "parallelism per step", caption))
        body.append(
            img_tag(
                figure_data_uri(rates_figure(trace, _peak_target(trace))),
                "achieved vs target rate and lag",
                "Achieved and target source rate, averaged over each measurement window (flat segments; gaps are "
                "time not measured, shaded where the job was reconfigured), the schedule's peak target, and the lag "
                "at the end of each window",
            )
        )
        body.append(
            img_tag(
                figure_data_uri(heatmap_figure(trace, order, "backpressured_max", "Backpressured time (most blocked instance)",
                                               "backpressured, % of window time", "Reds")),
                "backpressure heat map",
                f"Share of each window the most blocked instance spent waiting on a full output queue, in %; "
                f"{BACKPRESSURED_MIN:.0%} or more counts as backpressured",
            )
        )
        body.append(
            img_tag(
                figure_data_uri(heatmap_figure(trace, order, "busy_max", "Busy time (busiest instance)", "busy, % of window time", "Blues")),
                "busy time heat map",
                f"Share of each window the busiest instance spent processing, in %; {BUSY_SATURATED:.0%} or more is saturated",
            )
        )
        body.append(html_table(_STEP_HEADERS, _step_rows(trace, graph), numeric=_STEP_NUMERIC))
    else:
        body.append("<p>No steps were recorded.</p>")

    body.append("<h2>Decisions</h2>")
    decided = [s for s in trace.steps if s.decision is not None]
    if not decided:
        body.append("<p>No decisions were recorded.</p>")
    for step in decided:
        assert step.decision is not None
        converged = " (converged)" if step.decision.converged else ""
        body.append(f"<h3>Step {step.step}{converged}: {esc(step.decision.summary or 'no summary')}</h3>")
        body.append(html_table(_DECISION_HEADERS, _decision_rows(step), numeric=_DECISION_NUMERIC))
    if set_id is not None:
        body.append(f'<footer>Report set <code id="report-set">{esc(set_id)}</code>: {MANIFEST_NAME} lists every file of this set.</footer>')
    return html_page(f"{_STATUS_WORD[outcome.status]} · Tuning report: {trace.job}", body)


# ---- the report as one set ----------------------------------------------------------------------------

REPORT_FILES = ("trace.json", "summary.json", "report.md", "report.html")
MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "streamtune.report-manifest/1"
# A set being written lives in `DIR/.report-set.stmp-PID-XXXXXXXX/` until it is moved into DIR.
_STAGING_PREFIX = ".report-set.stmp-"
# Temp files an atomic write of one of these names may leave when killed: `.NAME.stmp-PID-...` (io.py), or
# `.NAME.XXXXXXXX` (streamtune before the report was written as a set).
_SWEPT_NAMES = (*REPORT_FILES, MANIFEST_NAME, "partial-trace.json")
_LEFTOVER = re.compile(r"^\.(" + "|".join(re.escape(n) for n in _SWEPT_NAMES) + r")\.(stmp-(\d+)-\S+|[a-z0-9_]{8})$")


def _set_id(trace_json: bytes) -> str:
    """The set's id: the start of trace.json's SHA-256, so the same trace always gives the same report."""
    return hashlib.sha256(trace_json).hexdigest()[:16]


def write_trace_reports(trace: Trace, out_dir: Path, *, oracle: dict[str, int] | None = None) -> list[Path]:
    """Write trace.json, summary.json, report.md and report.html into out_dir as one set; returns their paths
    and the manifest's (see write_report_set for what a crash can and cannot leave behind)."""
    trace_json = (trace.model_dump_json(indent=2) + "\n").encode("utf-8")
    set_id = _set_id(trace_json)
    files = {
        "trace.json": trace_json,
        "summary.json": (json.dumps(trace_summary(trace, oracle), indent=2) + "\n").encode("utf-8"),
        "report.md": trace_markdown(trace, oracle, set_id=set_id).encode("utf-8"),
        "report.html": trace_html(trace, oracle, set_id=set_id).encode("utf-8"),
    }
    return write_report_set(Path(out_dir), files, set_id=set_id)


@contextmanager
def _locked(folder: Path, exclusive: bool) -> Iterator[None]:
    """An advisory lock on the folder itself (no lock file is left behind), released when the process dies.

    Writers take it exclusively, readers shared, so a reader never catches a writer half-way; where the
    platform or file system has no flock the protocol below still keeps every set whole.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _remove_leftovers(folder: Path) -> None:
    """Staging folders and temp files that writers killed earlier left in `folder` (called under the lock)."""
    for entry in os.scandir(folder):
        if entry.name.startswith(_STAGING_PREFIX):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            continue
        match = _LEFTOVER.match(entry.name)
        if match is None or entry.is_dir(follow_symlinks=False):
            continue
        pid = match.group(3)
        if pid is not None and int(pid) != os.getpid() and process_alive(int(pid)):
            continue  # a write of partial-trace.json (say) still running in another process
        os.unlink(entry.path)


def _existing_modes(folder: Path, names: list[str]) -> dict[str, int]:
    """Modes of the files a new set replaces, after refusing what must not be replaced, before any change.

    The names are streamtune's, not the user's, so (as io.write_text_atomic does for derived names) a symbolic
    link there is refused rather than followed or dropped; a directory, device or FIFO, or a read-only file,
    is refused too. A writable file's mode is kept.
    """
    modes: dict[str, int] = {}
    for name in names:
        path = folder / name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            raise OutputError(
                f"cannot write {path}: it is a symbolic link (to {os.readlink(path)}); a report folder's files are "
                "never written through links"
            )
        if stat.S_ISDIR(info.st_mode):
            raise OutputError(f"cannot write {path}: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(f"cannot write {path}: it is not a regular file (a device, FIFO or socket)")
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o222:
            raise OutputError(
                f"cannot write {path}: the file is read-only (mode {mode:04o}); make it writable first if it should be replaced"
            )
        modes[name] = mode
    return modes


def _write_file(path: Path, data: bytes, mode: int | None) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if mode is not None:
        os.chmod(path, mode)


def write_report_set(out_dir: Path, files: Mapping[str, bytes], *, set_id: str) -> list[Path]:
    """Write `files` (name -> bytes) into out_dir as one set, then MANIFEST_NAME naming each with its SHA-256.

    The rule (docs/reports.md): the set in out_dir is complete and from one run exactly when manifest.json
    exists and every file it lists has the listed size and hash; read_report_set checks it. Whatever moment
    a writer is killed at, out_dir holds either the previous complete set, or some files of ONE set (never
    a mix of two runs, never half a file) and no manifest; the next write removes the leftovers.

    How: every file is written and fsynced in a staging folder inside out_dir, the manifest last; then, under
    an exclusive lock on out_dir, the old manifest is removed, then the old set's files, then the new files
    are renamed into place, then the new manifest.
    """
    out_dir = Path(out_dir)
    unknown = [name for name in files if "/" in name or name.startswith(".") or name == MANIFEST_NAME]
    if unknown:
        raise ValueError(f"not a report file name: {unknown[0]!r}")
    names = list(files)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"cannot write the report in {out_dir}: it is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with _locked(out_dir, exclusive=True):
            _remove_leftovers(out_dir)
            # The old set's files go before the new ones come in, so no moment shows two runs side by side.
            old_names = list(dict.fromkeys([*REPORT_FILES, *names]))
            modes = _existing_modes(out_dir, [MANIFEST_NAME, *old_names])
            manifest = {
                "schema": MANIFEST_SCHEMA,
                "set_id": set_id,
                "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()},
            }
            staging = Path(_make_staging(out_dir))
            try:
                for name, data in files.items():
                    _write_file(staging / name, data, modes.get(name))
                manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
                _write_file(staging / MANIFEST_NAME, manifest_bytes, modes.get(MANIFEST_NAME))
                fsync_dir(staging)
                # From here until the new manifest is in place, out_dir has no manifest: no complete set.
                (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
                fsync_dir(out_dir)
                for name in old_names:
                    (out_dir / name).unlink(missing_ok=True)
                fsync_dir(out_dir)
                for name in names:
                    os.replace(staging / name, out_dir / name)
                fsync_dir(out_dir)
                os.replace(staging / MANIFEST_NAME, out_dir / MANIFEST_NAME)
                fsync_dir(out_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except OutputError:
        raise
    except OSError as exc:
        named = exc.filename and str(exc.filename) != str(out_dir) and _STAGING_PREFIX not in str(exc.filename)
        where = f" ({exc.filename})" if named else ""
        raise OutputError(f"cannot write the report in {out_dir}: {exc.strerror or exc}{where}") from None
    return [out_dir / name for name in names] + [out_dir / MANIFEST_NAME]


def _make_staging(out_dir: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=out_dir)


def read_report_set(out_dir: Path) -> dict[str, bytes]:
    """The files of the complete report set in out_dir (name -> bytes), checked against its manifest.

    A SpecError naming the folder when there is no complete set: no manifest (never written, or a write was
    interrupted: run `tune --report` again), or a file missing or different from what the manifest lists.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST_NAME

    def problem(message: str) -> SpecError:
        return SpecError([Problem(Location(str(out_dir)), message)])

    if not out_dir.is_dir():
        raise problem("is not a report folder (no such directory)")
    with _locked(out_dir, exclusive=False):
        try:
            manifest_text = manifest_path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise problem(f"holds no complete report set ({MANIFEST_NAME} is missing: never written, or a write was interrupted)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise problem(f"cannot read {MANIFEST_NAME}: {exc}") from None
        try:
            manifest = json.loads(manifest_text)
        except (ValueError, RecursionError):
            raise problem(f"{MANIFEST_NAME} is not valid JSON") from None
        listed = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA or not isinstance(listed, dict):
            raise problem(f"{MANIFEST_NAME} is not a {MANIFEST_SCHEMA} manifest")
        contents: dict[str, bytes] = {}
        for name, entry in listed.items():
            if not isinstance(name, str) or "/" in name or name.startswith(".") or not isinstance(entry, dict):
                raise problem(f"{MANIFEST_NAME} lists an invalid entry {name!r}")
            path = out_dir / name
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    raise problem(f"{name} is not a regular file")
                data = path.read_bytes()
            except FileNotFoundError:
                raise problem(f"{name}, listed in {MANIFEST_NAME}, is missing") from None
            except OSError as exc:
                raise problem(f"cannot read {name}: {exc.strerror or exc}") from None
            if len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                raise problem(f"{name} is not the file {MANIFEST_NAME} lists (another run's, or changed since)")
            contents[name] = data
    return contents
