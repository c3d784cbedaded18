"""Trace reports: files, Mermaid DAG, self-contained and escaped HTML, and summary values vs the trace."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from streamtune_cli.executors.base import Decision, Observation, OperatorMetrics, Trace, TraceStep
from streamtune_cli.report.trace_report import (
    heatmap_figure,
    parallelism_figure,
    rates_figure,
    step_bottlenecks,
    trace_html,
    trace_markdown,
    trace_outcome,
    trace_summary,
    write_trace_reports,
)
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.loader import load_spec_text, spec_to_data

SPEC_YAML = """
name: {name}
workload: {{rate_rps: 1000}}
operators:
  - {{id: src, kind: source, cost_us: 100}}
  - {{id: count, kind: aggregate, cost_us: 400, key: [k], aggregates: {{n: "COUNT(*)"}}}}
  - {{id: out, kind: sink, cost_us: 50}}
edges:
  - {{from: src, to: count, partitioning: hash, key: [k]}}
  - {{from: count, to: out, partitioning: rebalance}}
"""


def _metrics(op: str, p: int, rate: float, busy: float, backpressured: float) -> OperatorMetrics:
    return OperatorMetrics(
        operator=op, parallelism=p, input_rate_rps=rate, output_rate_rps=rate, busy=busy, busy_max=busy,
        idle=max(0.0, 1 - busy - backpressured), backpressured=backpressured, backpressured_max=backpressured,
        true_processing_rate_rps=rate / max(busy, 1e-9), true_output_rate_rps=rate / max(busy, 1e-9),
    )


def _observation(t_s: float, achieved: float, ops: dict[str, tuple[int, float, float]]) -> Observation:
    return Observation(
        t_s=t_s, window_s=30.0, target_rate_rps=1000.0, achieved_rate_rps=achieved,
        lag_records=max(0.0, (1000.0 - achieved) * t_s),
        operators={op: _metrics(op, p, achieved, busy, bp) for op, (p, busy, bp) in ops.items()},
    )


def make_trace(name: str = "toy-job", *, with_meta: bool = False) -> Trace:
    """Three steps: count is the bottleneck at p=1, still at p=2, fine at p=3."""
    spec = load_spec_text(SPEC_YAML.format(name=json.dumps(name)))
    plans = [{"src": 1, "count": 1, "out": 1}, {"src": 1, "count": 2, "out": 1}, {"src": 1, "count": 3, "out": 1}]
    observations = [
        _observation(30, 400.0, {"src": (1, 0.2, 0.7), "count": (1, 1.0, 0.0), "out": (1, 0.02, 0.0)}),
        _observation(60, 800.0, {"src": (1, 0.4, 0.4), "count": (2, 1.0, 0.0), "out": (1, 0.04, 0.0)}),
        _observation(90, 1000.0, {"src": (1, 0.5, 0.0), "count": (3, 0.67, 0.0), "out": (1, 0.05, 0.0)}),
    ]
    decisions = [
        Decision(parallelism=plans[1], reasons={"count": "saturated <b>busy</b>", "src": "keeps up"}, summary="scale count up"),
        Decision(parallelism=plans[2], reasons={"count": "still saturated"}, summary="scale count up again"),
        Decision(parallelism=plans[2], reasons={}, summary="no bottleneck", converged=True),
    ]
    steps = [
        TraceStep(step=i, parallelism=plans[i], observation=observations[i], decision=decisions[i]) for i in range(3)
    ]
    meta = {}
    if with_meta:
        meta = {"reconfigurations": 7, "converged": False, "final_parallelism": {"src": 2, "count": 5, "out": 1},
                "target_met": False, "backpressured_windows": 9, "stop_reason": "max_steps"}
    return Trace(job=spec.name, spec=spec_to_data(spec), executor="sim", tuner="ds2", seed=3, steps=steps, meta=meta)


ORACLE = {"src": 1, "count": 3, "out": 1}


def test_summary_derived_from_steps():
    trace = make_trace()
    summary = trace_summary(trace, ORACLE)
    assert summary["schema"] == "streamtune.tune-summary/1"  # what `streamtune gate` reads as its kind
    assert summary["steps"] == 3
    # parallelism changed between step 0->1 and 1->2
    assert summary["reconfigurations"] == 2
    assert summary["converged"] is True
    assert summary["target_met"] is True  # last window achieved == target
    assert summary["backpressured_windows"] == 2  # 400 and 800 of 1000
    assert summary["final_parallelism"] == trace.steps[-1].parallelism
    assert summary["final_total_parallelism"] == 5
    assert summary["initial_total_parallelism"] == 3
    assert summary["oracle_total_parallelism"] == 5
    assert summary["final_over_oracle"] == pytest.approx(1.0)
    assert "oracle_total_parallelism" not in trace_summary(trace)


def test_summary_prefers_loop_meta():
    trace = make_trace(with_meta=True)
    summary = trace_summary(trace, ORACLE)
    for key in ("reconfigurations", "converged", "target_met", "backpressured_windows", "stop_reason"):
        assert summary[key] == trace.meta[key]
    assert summary["final_parallelism"] == trace.meta["final_parallelism"]
    assert summary["final_total_parallelism"] == sum(trace.meta["final_parallelism"].values())
    assert summary["final_over_oracle"] == pytest.approx(8 / 5)


def test_bottlenecks_follow_backpressure():
    trace = make_trace()
    graph = JobGraph(load_spec_text(SPEC_YAML.format(name="x")))
    assert step_bottlenecks(graph, trace.steps[0].observation) == (["count"], ["src"])
    assert step_bottlenecks(graph, trace.steps[2].observation) == ([], [])


def test_markdown_has_mermaid_dag_steps_and_decisions():
    trace = make_trace()
    text = trace_markdown(trace, ORACLE)
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    for op in trace.spec["operators"]:
        assert f"{op['id']} · {op['kind']}" in blocks[0]
    assert "p: 1 → 3" in blocks[0] and "oracle: 3" in blocks[0]
    # one step row per step, and every per-operator reason appears
    for step in trace.steps:
        assert re.search(rf"^\| {step.step} \| {sum(step.parallelism.values())} \|", text, flags=re.M)
        for reason in step.decision.reasons.values():
            assert reason in text
    assert "toy-job" in text.splitlines()[0]


def test_write_reports_files(tmp_path: Path):
    trace = make_trace()
    paths = write_trace_reports(trace, tmp_path / "out", oracle=ORACLE)
    names = {p.name for p in paths}
    assert {"trace.json", "report.md", "report.html", "summary.json"} <= names
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert Trace.model_validate_json((tmp_path / "out" / "trace.json").read_text()) == trace
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == trace_summary(trace, ORACLE)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "no temp files left behind"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "script":
            self.scripts += 1
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def test_html_self_contained_and_escaped():
    evil = '<script>alert("x")</script><img src="http://evil.example/a.png">'
    trace = make_trace(evil)
    html = trace_html(trace, ORACLE)
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert parser.scripts == 0
    assert not [r for r in parser.refs if r.startswith(("http://", "https://", "//"))]
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html)
    assert '<img src="data:image/png;base64,' in html
    # DAG, parallelism, rates and lag, backpressure and busy heat maps
    assert html.count('<img src="data:image/png;base64,') == 5
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert evil in "".join(parser.text)  # shown to the reader as text, intact
    assert "&lt;b&gt;busy&lt;/b&gt;" in html  # reasons escaped too


def test_empty_trace_reports(tmp_path: Path):
    spec = load_spec_text(SPEC_YAML.format(name="empty"))
    trace = Trace(job="empty", spec=spec_to_data(spec), executor="sim", tuner="ds2")
    paths = write_trace_reports(trace, tmp_path, oracle=None)
    assert [p.name for p in paths] == ["trace.json", "summary.json", "report.md", "report.html", "manifest.json"]
    summary = trace_summary(trace)
    assert summary["steps"] == 0 and summary["reconfigurations"] == 0 and summary["target_met"] is False


def test_report_of_a_real_tuning_run(tmp_path: Path):
    """A trace from the tuning loop on the sim executor renders, and its summary agrees with the loop's meta."""
    from streamtune_cli.executors.sim import SimExecutor
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning
    from streamtune_cli.tuning.oracle import oracle_parallelism
    from streamtune_cli.tuning.tuners import make_tuner

    spec = load_spec_text(SPEC_YAML.format(name="live"))
    executor = SimExecutor(seed=1)
    trace = run_tuning(spec, executor, make_tuner("ds2"), TuningConfig(max_steps=6), seed=1)
    executor.close()
    oracle = oracle_parallelism(spec).parallelism
    write_trace_reports(trace, tmp_path, oracle=oracle)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_parallelism"] == trace.meta["final_parallelism"]
    assert summary["reconfigurations"] == trace.meta["reconfigurations"]
    # every deployed change between consecutive steps is a reconfiguration the loop counted
    assert summary["reconfigurations"] == sum(
        1 for a, b in zip(trace.steps, trace.steps[1:]) if a.parallelism != b.parallelism
    )
    text = (tmp_path / "report.md").read_text()
    for op in spec.operators:
        assert f"{op.id} · {op.kind.value}" in text
    assert text.count("### Step ") == len(trace.steps)


def test_window_that_keeps_up_has_no_bottleneck():
    graph = JobGraph(load_spec_text(SPEC_YAML.format(name="x")))
    full = _observation(30, 1000.0, {"src": (1, 0.5, 0.0), "count": (3, 0.97, 0.0), "out": (1, 0.05, 0.0)})
    assert step_bottlenecks(graph, full) == ([], [])
    trace = make_trace()
    steps = [trace.steps[0].model_copy(update={"observation": full})]
    text = trace_markdown(trace.model_copy(update={"steps": steps}))
    assert "none (at capacity: count)" in text


# ---- reports that do not mislead ---------------------------------------------------------------------


def _with_meta(trace: Trace, **meta: object) -> Trace:
    return trace.model_copy(update={"meta": {**trace.meta, **meta}})


def test_outcome_of_real_runs(failed_trace, good_trace):
    failed = trace_outcome(failed_trace[0])
    assert failed.status == "failed" and failed.failed
    assert "Target not met at the peak (400,000 rec/s)" in failed.headline and "stalled" in failed.headline
    good = trace_outcome(good_trace[0])
    assert good.status == "ok" and not good.failed
    assert good.headline.startswith("Target met at the peak")


@pytest.mark.parametrize(
    ("meta", "status", "headline"),
    [
        ({}, "ok", "Target met at the peak (1,000 rec/s)"),
        ({"target_met": False, "stop_reason": "max_steps"}, "failed", "Target not met at the peak"),
        ({"stop_reason": "stalled", "converged": False, "target_met": False}, "failed", "the tuning loop stalled"),
        ({"target_met": True, "converged": False, "stop_reason": "max_steps"}, "warning", "did not converge"),
        ({"stop_reason": "dry_run"}, "info", "Dry run"),
        ({"partial": True, "error": "executor flink: job vanished"}, "failed", "Partial trace"),
    ],
)
def test_outcome_rules(meta, status, headline):
    outcome = trace_outcome(_with_meta(make_trace(), **meta))
    assert outcome.status == status
    assert headline in outcome.headline


def test_outcome_of_an_empty_or_partial_trace_is_a_failure():
    spec = load_spec_text(SPEC_YAML.format(name="empty"))
    empty = Trace(job="empty", spec=spec_to_data(spec), executor="sim", tuner="ds2")
    assert trace_outcome(empty).status == "failed"
    partial = _with_meta(make_trace(), partial=True, error="x" * 100_000)
    outcome = trace_outcome(partial)
    assert outcome.failed and len(" ".join(outcome.details)) < 400  # a headline quotes, it does not dump


def test_failure_is_at_the_top_of_both_documents(failed_trace, good_trace):
    for (trace, oracle), status, alert in ((failed_trace, "failed", "CAUTION"), (good_trace, "ok", "TIP")):
        html = trace_html(trace, oracle)
        # the banner is the first thing after the page heading, and there is exactly one
        assert re.search(rf'<body>\s*<h1>[^<]*</h1>\s*<div id="outcome" class="banner {status}"', html)
        assert html.count('id="outcome"') == 1
        assert re.search(rf"<title>{'FAILED' if status == 'failed' else 'OK'} · Tuning report", html)
        lines = trace_markdown(trace, oracle).splitlines()
        assert lines[2] == f"> [!{alert}]" and lines[3].startswith(f"> **{'FAILED' if status == 'failed' else 'OK'}**")
    assert "banner failed" not in trace_html(*good_trace) and "CAUTION" not in trace_markdown(*good_trace)


def test_parallelism_plot_draws_exact_integers(failed_trace):
    trace, oracle = failed_trace
    order = list(trace.steps[0].parallelism)
    fig = parallelism_figure(trace, order, oracle)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if line.get_linestyle() not in ("None", "none")}
    assert set(lines) == set(order)
    for op in order:
        ys = list(lines[op].get_ydata())
        # one value per step (the last repeated to close the step), each exactly the deployed parallelism
        assert ys == [s.parallelism[op] for s in trace.steps] + [trace.steps[-1].parallelism[op]]
    markers = [line for line in ax.get_lines() if line.get_linestyle() in ("None", "none")]
    assert sorted(float(m.get_ydata()[0]) for m in markers) == sorted(float(v) for v in oracle.values())
    fig.canvas.draw()
    assert all(label.get_text().lstrip("−-").isdigit() for label in ax.get_yticklabels() if label.get_text())


def test_rates_plot_breaks_at_reconfigurations_and_shows_the_peak_and_lag(failed_trace):
    trace, _ = failed_trace
    peak = trace.meta["peak_target_rate_rps"]
    fig = rates_figure(trace, peak)
    rate_ax, lag_ax = fig.axes[:2]
    windows = [(s.observation.t_s - s.observation.window_s, s.observation.t_s) for s in trace.steps]
    # every drawn rate is a flat segment inside one measurement window: nothing bridges a restart
    segments = [seg for coll in rate_ax.collections for seg in coll.get_segments()]
    assert len(segments) == 2 * len(trace.steps)  # target and achieved per window
    for (x0, y0), (x1, y1) in segments:
        assert y0 == y1 and any(start <= x0 < x1 <= end for start, end in windows)
    sloped = [line for line in rate_ax.get_lines() if line.get_linestyle() not in ("None", "none") and len(set(line.get_ydata())) > 1]
    assert not sloped
    peak_lines = [line for line in rate_ax.get_lines() if "peak" in line.get_label()]
    assert len(peak_lines) == 1 and set(peak_lines[0].get_ydata()) == {peak}
    assert len(rate_ax.patches) == trace.meta["reconfigurations"]  # one shaded restart per reconfiguration
    fig.canvas.draw()
    for ax, unit in ((rate_ax, "rec/s"), (lag_ax, "records")):
        assert unit in ax.get_ylabel()
        assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e6" above the axis
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert labels and not [t for t in labels if "e" in t]
    assert any(label.endswith("k") for label in (t.get_text() for t in rate_ax.get_yticklabels()))
    lag_points = [line for line in lag_ax.get_lines() if line.get_marker() == "o"]
    assert list(lag_points[0].get_ydata()) == [s.observation.lag_records for s in trace.steps]


@pytest.mark.parametrize("metric", ["backpressured_max", "busy_max"])
def test_heat_map_shows_one_labelled_metric(failed_trace, metric):
    trace, _ = failed_trace
    order = list(trace.steps[0].parallelism)
    fig = heatmap_figure(trace, order, metric, "title", f"{metric}, % of window time", "Reds")
    ax, colorbar_ax = fig.axes
    assert len(ax.images) == 1
    expected = [[getattr(s.observation.operators[op], metric) * 100 for s in trace.steps] for op in order]
    shown = ax.images[0].get_array().tolist()
    assert [v for row in shown for v in row] == pytest.approx([v for row in expected for v in row])
    assert colorbar_ax.get_ylabel() == f"{metric}, % of window time"
    # the numbers in the cells are the coloured metric itself, not another one
    cells = sorted(int(t.get_text()) for t in ax.texts)
    assert cells == sorted(round(v) for row in expected for v in row)


def test_html_has_a_content_security_policy_and_a_set_id(good_trace):
    html = trace_html(*good_trace, set_id="0123abcd")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html and "img-src data:" in html
    assert '<code id="report-set">0123abcd</code>' in html
    assert "`0123abcd`" in trace_markdown(*good_trace, set_id="0123abcd")
