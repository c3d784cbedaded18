"""Metric paths: the syntax (dots, indices, quoted keys, wildcards), strict expansion, and round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.gate_rules import (
    Glob,
    Index,
    Key,
    MissingMetric,
    covers,
    expand,
    format_path,
    lookup,
    parse_metric_path,
)

REPORT: dict[str, Any] = {
    "tuners": {
        "ds2": {"mean_reconfigurations": 2.5, "runs": [{"p": 3}, {"p": 4}]},
        "conttune": {"mean_reconfigurations": 1.5, "runs": [{"p": 2}]},
    },
    "savings": {"cpu.pct": 12.0, "net pct": 3.0},
    "steps": [10, 20, 30],
    "0": "a key that looks like an index",
}


@pytest.mark.parametrize(
    "text, segments",
    [
        ("a", (Key("a"),)),
        ("a.b.c", (Key("a"), Key("b"), Key("c"))),
        ("steps[0]", (Key("steps"), Index(0))),
        ("steps[-1]", (Key("steps"), Index(-1))),
        ("steps.0", (Key("steps"), Key("0"))),
        ('savings["cpu.pct"]', (Key("savings"), Key("cpu.pct", bare=False))),
        ("savings['net pct']", (Key("savings"), Key("net pct", bare=False))),
        ('["a.b"].c', (Key("a.b", bare=False), Key("c"))),
        ('x["say \\"hi\\""]', (Key("x"), Key('say "hi"', bare=False))),
        ("tuners.*.mean", (Key("tuners"), Glob("*"), Key("mean"))),
        ("tuners.d?2.mean", (Key("tuners"), Glob("d?2"), Key("mean"))),
        ("runs[*].p", (Key("runs"), Glob("*"), Key("p"))),
        ("a[0][1].b", (Key("a"), Index(0), Index(1), Key("b"))),
        ("with-dash_and_9", (Key("with-dash_and_9"),)),
    ],
)
def test_parse(text: str, segments: tuple) -> None:
    assert parse_metric_path(text) == segments


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("a..b", "empty segment at character 3"),
        ("a.", "ends with '.'"),
        (".a", "empty segment at character 1"),
        ("a[0", "unclosed '['"),
        ("a[x]", "neither an integer index"),
        ('a["b]', "unclosed quote"),
        ('a["b"x]', "expected ']'"),
        ("a.[0]", "'[' right after '.'"),
        ("a[0]b", "expected '.' or '['"),
        (" a", "leading or trailing spaces"),
        ("'a'", "unexpected"),
        ('a["\\q"]', "bad escape"),
    ],
)
def test_parse_errors_say_where(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_metric_path(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("tuners.ds2.mean_reconfigurations", {"tuners.ds2.mean_reconfigurations": 2.5}),
        ("tuners.*.mean_reconfigurations", {"tuners.ds2.mean_reconfigurations": 2.5, "tuners.conttune.mean_reconfigurations": 1.5}),
        ("tuners.c*.mean_reconfigurations", {"tuners.conttune.mean_reconfigurations": 1.5}),
        ("tuners.*.runs[*].p", {"tuners.ds2.runs[0].p": 3, "tuners.ds2.runs[1].p": 4, "tuners.conttune.runs[0].p": 2}),
        ("steps[-1]", {"steps[2]": 30}),
        ("steps.1", {"steps[1]": 20}),
        ("0", {'["0"]': "a key that looks like an index"}),
        ('savings["cpu.pct"]', {'savings["cpu.pct"]': 12.0}),
        ("savings.*", {'savings["cpu.pct"]': 12.0, 'savings["net pct"]': 3.0}),
    ],
)
def test_expand(text: str, expected: dict[str, Any]) -> None:
    found = {format_path(c): v for c, v in expand(REPORT, parse_metric_path(text))}
    assert found == expected
    # every canonical path leads back to its own value
    for path_text, value in found.items():
        assert [v for _, v in expand(REPORT, parse_metric_path(path_text))] == [value]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("tuners.ds3.mean_reconfigurations", "no key 'ds3' under 'tuners' (has: ds2, conttune)"),
        ("tuners.*.missing", "no key 'missing' under 'tuners.ds2'"),
        ("tuners.x*.mean", "nothing matches 'x*' under 'tuners'"),
        ("steps[7]", "index 7 under 'steps' is out of range (length 3)"),
        ("steps.x", "key 'x' under 'steps' needs a mapping, found a list"),
        ("tuners[0]", "index [0] under 'tuners' needs a list, found a mapping"),
        ("steps[0].x", "needs a mapping, found int 10"),
        ("nothing", "no key 'nothing' at the top level"),
    ],
)
def test_missing_metrics_explain_themselves(text: str, fragment: str) -> None:
    with pytest.raises(MissingMetric) as info:
        expand(REPORT, parse_metric_path(text))
    assert fragment in info.value.reason


def test_wildcard_branch_without_the_metric_is_an_error_not_a_silent_drop() -> None:
    data = {"tuners": {"a": {"m": 1}, "b": {}}}
    with pytest.raises(MissingMetric) as info:
        expand(data, parse_metric_path("tuners.*.m"))
    assert info.value.at == ("tuners", "b")


json_keys = st.text(min_size=0, max_size=6)
json_leaf = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text(max_size=3))
json_tree = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, min_size=1, max_size=3), st.dictionaries(json_keys, inner, min_size=1, max_size=3)),
    max_leaves=12,
)


def _all_paths(node: Any, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _all_paths(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _all_paths(v, at + (i,))
    return out


def _walk(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


@settings(max_examples=150, deadline=None)
@given(json_tree)
def test_format_then_parse_reaches_the_same_value(data: Any) -> None:
    """Any key (dots, quotes, brackets, digits, spaces, empty) survives format_path -> parse -> expand."""
    for path in _all_paths(data):
        if not path:
            continue
        text = format_path(path)
        matches = expand(data, parse_metric_path(text))
        assert len(matches) == 1
        assert matches[0][0] == path
        assert matches[0][1] == _walk(data, path)
        assert lookup(data, path) == _walk(data, path)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), st.dictionaries(st.sampled_from(["m", "n"]), st.integers()), min_size=1, max_size=5))
def test_star_expands_to_one_match_per_key_that_has_the_metric(data: dict) -> None:
    holders = [k for k, v in data.items() if "m" in v]
    if len(holders) == len(data):
        assert [c for c, _ in expand(data, parse_metric_path("*.m"))] == [(k, "m") for k in data]
    else:
        with pytest.raises(MissingMetric):
            expand(data, parse_metric_path("*.m"))


@pytest.mark.parametrize(
    "pattern, concrete, covered",
    [
        ("aggregates.oracle", ("aggregates", "oracle"), True),
        ("aggregates.oracle", ("aggregates", "oracle", "x"), True),
        ("aggregates.oracle", ("aggregates", "ds2", "x"), False),
        ("aggregates.oracle.x", ("aggregates", "oracle"), False),
        ("*.o*", ("a", "oracle"), True),
        ("runs[1]", ("runs", 1, "p"), True),
        ("runs.1", ("runs", 1), True),
        ("runs[*]", ("runs", 0), True),
        ("runs[0]", ("runs", 1), False),
        ('["a.b"]', ("a.b", "c"), True),
    ],
)
def test_covers(pattern: str, concrete: tuple, covered: bool) -> None:
    assert covers(parse_metric_path(pattern), concrete) is covered


def test_skip_drops_branches_before_their_contents_are_read() -> None:
    data = {"aggregates": {"ds2": {"m": 1}, "oracle": {}}}
    path = parse_metric_path("aggregates.*.m")
    with pytest.raises(MissingMetric):
        expand(data, path)
    oracle = parse_metric_path("aggregates.oracle")
    assert expand(data, path, skip=lambda c: covers(oracle, c)) == [(("aggregates", "ds2", "m"), 1)]
