"""Tuning-trace reports: trace.json, summary.json (what CI gates read), report.md (Mermaid DAG) and a
self-contained report.html with plots (parallelism per step, achieved vs target rate, backpressure heat map).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamtune_cli.definitions import BACKPRESSURE_THRESHOLD, BUSY_THRESHOLD
from streamtune_cli.executors.base import Observation, Trace, TraceStep
from streamtune_cli.report.html import esc, figure_data_uri, html_page, html_table, img_tag, new_figure
from streamtune_cli.report.markdown import fmt_number, fmt_ratio, md_cell, md_table
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.io import write_text_atomic

__all__ = [
    "BUSY_SATURATED",
    "BACKPRESSURED_MIN",
    "trace_summary",
    "step_bottlenecks",
    "trace_markdown",
    "trace_html",
    "write_trace_reports",
]

# An operator at >= 90% busy has no headroom left (DS2/Flink practice, see DESIGN "Bottleneck label");
# 5% of the window blocked on output is well above what measurement noise alone reports.
BUSY_SATURATED = BUSY_THRESHOLD
BACKPRESSURED_MIN = BACKPRESSURE_THRESHOLD

Oracle = dict[str, int]


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


def _meta_rows(trace: Trace, summary: dict[str, Any]) -> list[list[Any]]:
    rows = [
        ["job", trace.job],
        ["executor", trace.executor],
        ["tuner", trace.tuner],
        ["seed", "—" if trace.seed is None else trace.seed],
        ["steps", summary["steps"]],
        ["reconfigurations", summary["reconfigurations"]],
        ["converged", "yes" if summary["converged"] else "no"],
        ["target met at the end", "yes" if summary["target_met"] else "no"],
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


def trace_markdown(trace: Trace, oracle: Oracle | None = None) -> str:
    """report.md: metadata, a Mermaid DAG with initial -> final (and oracle) parallelism, steps, decisions."""
    from streamtune_cli.report.mermaid import mermaid_flowchart

    summary = trace_summary(trace, oracle)
    graph = _graph(trace)
    order = _operator_order(trace, graph)
    initial, final = _initial_final(trace, summary)
    out = [f"# Tuning report: {md_cell(trace.job)}", ""]
    out.append(md_table(["", "value"], _meta_rows(trace, summary)))

    out += ["## Job DAG", ""]
    if graph is not None:

        def node_label(op: Any) -> str:
            label = f"{op.id} · {op.kind.value}<br/>p: {fmt_number(initial.get(op.id))} → {fmt_number(final.get(op.id))}"
            if oracle is not None:
                label += f"<br/>oracle: {fmt_number(oracle.get(op.id))}"
            return label

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
    return "\n".join(out).rstrip("\n") + "\n"


# ---- plots ------------------------------------------------------------------------------------------


def _plot_parallelism(trace: Trace, order: list[str], final: dict[str, int], oracle: Oracle | None) -> str:
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(8.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    steps = [s.step for s in trace.steps]
    # The proposal after the last window is drawn one step further, so the final plan is visible too.
    xs = steps + [steps[-1] + 1]
    # Operators often share a parallelism; a small vertical offset keeps every line visible.
    offset = 0.06 if len(order) > 1 else 0.0
    for i, op in enumerate(order):
        shift = offset * (i - (len(order) - 1) / 2)
        ys = [s.parallelism.get(op, 0) for s in trace.steps] + [final.get(op, trace.steps[-1].parallelism.get(op, 0))]
        line = ax.step(xs, [y + shift for y in ys], where="post", label=op, linewidth=1.6, color=f"C{i % 10}")[0]
        if oracle is not None and op in oracle:
            ax.plot([xs[-1] + 0.15], [oracle[op] + shift], marker="x", color=line.get_color(), linestyle="none")
    ax.set_xticks(xs, labels=[str(x) for x in steps] + ["final"])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step" + ("  (x = oracle)" if oracle is not None else ""))
    ax.set_ylabel("parallelism")
    ax.set_title("Parallelism per operator (lines offset slightly where they overlap)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return figure_data_uri(fig)


def _plot_rates(trace: Trace) -> str:
    fig = new_figure(8.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    steps = [s.step for s in trace.steps]
    ax.plot(steps, [s.observation.target_rate_rps for s in trace.steps], "--", color="0.4", label="target")
    ax.plot(steps, [s.observation.achieved_rate_rps for s in trace.steps], "o-", color="C0", label="achieved")
    ax.set_xticks(steps, labels=[str(x) for x in steps])
    ax.set_xlabel("step")
    ax.set_ylabel("records/s")
    ax.set_title("Achieved vs target source rate")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_data_uri(fig)


def _plot_heatmap(trace: Trace, order: list[str]) -> str:
    import numpy as np

    backpressured = np.array(
        [[s.observation.operators[op].backpressured if op in s.observation.operators else np.nan for s in trace.steps] for op in order]
    )
    busy = np.array(
        [[s.observation.operators[op].busy if op in s.observation.operators else np.nan for s in trace.steps] for op in order]
    )
    fig = new_figure(max(5.0, min(12.0, 2.5 + 0.5 * len(trace.steps))), max(2.2, 0.8 + 0.35 * len(order)))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(backpressured, aspect="auto", cmap="Reds", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks(range(len(order)), labels=order, fontsize=8)
    ax.set_xticks(range(len(trace.steps)), labels=[str(s.step) for s in trace.steps], fontsize=8)
    ax.set_xlabel("step")
    ax.set_title("Backpressured fraction (cell text: busy %, bold = saturated)")
    if backpressured.size <= 400:
        for (row, col), value in np.ndenumerate(busy):
            if np.isnan(value):
                continue
            colour = "white" if backpressured[row, col] > 0.55 else "black"
            weight = "bold" if value >= BUSY_SATURATED else "normal"
            ax.text(col, row, f"{value * 100:.0f}", ha="center", va="center", fontsize=7, color=colour, fontweight=weight)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    return figure_data_uri(fig)


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
        text = f"{op_id}\n{op.kind.value}\np: {fmt_number(initial.get(op_id))} → {fmt_number(final.get(op_id))}"
        if oracle is not None:
            text += f"\noracle: {fmt_number(oracle.get(op_id))}"
        labels[op_id] = text
    font_pt = 7
    # Square nodes sized to the longest label line (~0.6 em per character) so no label spills out.
    longest = max(len(line) for text in labels.values() for line in text.splitlines())
    side_pt = max(48.0, 0.62 * font_pt * longest + 10, 1.3 * font_pt * (4 if oracle is not None else 3) + 10)
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


def trace_html(trace: Trace, oracle: Oracle | None = None) -> str:
    """report.html: the Markdown report's content plus plots, in one file that needs no network or scripts."""
    from streamtune_cli.report.mermaid import mermaid_flowchart

    summary = trace_summary(trace, oracle)
    graph = _graph(trace)
    order = _operator_order(trace, graph)
    initial, final = _initial_final(trace, summary)
    body = [f"<h1>Tuning report: {esc(trace.job)}</h1>", html_table(["", "value"], _meta_rows(trace, summary), css_class="meta")]

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
        caption = "Parallelism per operator per step"
        if oracle is not None:
            caption += f" (oracle total {summary['oracle_total_parallelism']})"
        body.append(img_tag(_plot_parallelism(trace, order, final, oracle), "parallelism per step", caption))
        body.append(img_tag(_plot_rates(trace), "achieved vs target rate", "Achieved vs target source rate per step"))
        body.append(img_tag(_plot_heatmap(trace, order), "backpressure heat map", "Backpressure per operator and step"))
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
    return html_page(f"Tuning report: {trace.job}", body)


def write_trace_reports(trace: Trace, out_dir: Path, *, oracle: dict[str, int] | None = None) -> list[Path]:
    """Write trace.json, summary.json, report.md and report.html into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "trace.json": trace.model_dump_json(indent=2) + "\n",
        "summary.json": json.dumps(trace_summary(trace, oracle), indent=2) + "\n",
        "report.md": trace_markdown(trace, oracle),
        "report.html": trace_html(trace, oracle),
    }
    written = []
    for name, text in files.items():
        path = out_dir / name
        write_text_atomic(path, text)
        written.append(path)
    return written
