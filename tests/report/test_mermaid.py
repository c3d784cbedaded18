"""Mermaid flowcharts: nodes show operator names, and no label text can break the diagram or inject markup."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from streamtune_cli.report.mermaid import LINE_BREAK, mermaid_flowchart, mermaid_text
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.loader import load_spec_text

# What Mermaid (or the HTML it renders labels as) would read as syntax inside a quoted label.
_SYNTAX = set('"<>&#`|')
_CODE = re.compile(r"#(quot|\d+);")


def _decode(text: str) -> str:
    """What Mermaid shows for a label: its entity codes turned back into characters."""
    return _CODE.sub(lambda m: '"' if m.group(1) == "quot" else chr(int(m.group(1))), text)


def _graph(name: str) -> JobGraph:
    spec = f"""
name: names
workload: {{rate_rps: 1000}}
operators:
  - {{id: src, kind: source, name: {json.dumps(name)}}}
  - {{id: plain, kind: map}}
  - {{id: out, kind: sink, name: "Sink: out"}}
edges:
  - {{from: src, to: plain}}
  - {{from: plain, to: out, partitioning: hash, key: ["a<b"]}}
"""
    return JobGraph(load_spec_text(spec))


def _labels(chart: str) -> list[str]:
    return re.findall(r'\["([^"]*)"\]|\|"([^"]*)"\|', chart)


def test_nodes_show_operator_names_escaped():
    name = 'Source: bids -> Calc[select=<a>, "b"] #1 & `x` | y'
    chart = mermaid_flowchart(_graph(name))
    labels = [a or b for a, b in _labels(chart)]
    node = next(label for label in labels if "src" in label)
    lines = node.split(LINE_BREAK)
    assert _decode(lines[0]) == f"{name} (src)"  # the name, with the id it stands for
    assert lines[1] == "source · p=1"
    assert any(label.startswith("plain") for label in labels)  # no name: the id alone
    for label in labels:
        assert not _SYNTAX & set(_CODE.sub("", label.replace(LINE_BREAK, "")))
    assert "hash(a#60;b)" in chart  # edge labels are escaped too
    # every line of the chart is still one statement: nothing in a name ended a label early
    assert all(line.count('"') % 2 == 0 for line in chart.splitlines())


def test_line_breaks_in_names_are_text_not_markup():
    chart = mermaid_flowchart(_graph("a<br/>b\nc"))
    assert "a#60;br/#62;b c (src)" in chart


@given(st.text(max_size=40))
def test_any_text_survives_escaping(text: str):
    escaped = mermaid_text(text)
    assert not _SYNTAX & set(_CODE.sub("", escaped))
    assert "\n" not in escaped and "\r" not in escaped
    assert _decode(escaped) == text.replace("\r", " ").replace("\n", " ")
