"""Gate evaluation: every check kind at and around its limit, strictness about missing metrics, bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.errors import SpecError
from streamtune_cli.gate import Verdict, evaluate, fmt_value
from streamtune_cli.gate_rules import load_rules_text


def rules_yaml(**fields: Any) -> str:
    lines = ["rules:", "  - metric: m"]
    for key, value in fields.items():
        lines.append(f"    {key}: {str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"


def gate(rule_fields: dict[str, Any], value: Any, baseline: Any = None) -> Any:
    loaded = load_rules_text(rules_yaml(**rule_fields), "rules.yaml")
    base = {} if baseline is None else {"m": baseline}
    return evaluate(loaded, {"m": value}, base, report_file="report.json", baseline_file="base.json")


# (rule fields, value, baseline, expected verdict, expected limit). Limits are worked out by hand:
# lower is better: base + max(|base| * pct / 100, abs); higher is better: base - that.
CASES = [
    ("max: pass below", {"max": 5}, 4.9, None, "pass", 5),
    ("max: pass at the limit", {"max": 5}, 5, None, "pass", 5),
    ("max: fail above", {"max": 5}, 5.01, None, "fail", 5),
    ("min: pass above", {"min": 0.5}, 0.6, None, "pass", 0.5),
    ("min: pass at the limit", {"min": 0.5}, 0.5, None, "pass", 0.5),
    ("min: fail below", {"min": 0.5}, 0.49, None, "fail", 0.5),
    ("min: negative bound", {"min": -3}, -2, None, "pass", -3),
    ("lower pct: within", {"direction": "lower_is_better", "max_regression_pct": 10}, 10.5, 10, "pass", 11),
    ("lower pct: exactly at", {"direction": "lower_is_better", "max_regression_pct": 10}, 11, 10, "pass", 11),
    ("lower pct: over", {"direction": "lower_is_better", "max_regression_pct": 10}, 11.2, 10, "fail", 11),
    ("lower pct: improvement", {"direction": "lower_is_better", "max_regression_pct": 0}, 3, 10, "pass", 10),
    ("lower pct: float noise at the limit", {"direction": "lower_is_better", "max_regression_pct": 10}, 0.33, 0.3, "pass", 0.33),
    ("lower pct: zero baseline forbids any rise", {"direction": "lower_is_better", "max_regression_pct": 50}, 0.1, 0, "fail", 0),
    ("lower abs: zero baseline", {"direction": "lower_is_better", "max_regression_abs": 1}, 1, 0, "pass", 1),
    ("lower pct+abs: abs is larger", {"direction": "lower_is_better", "max_regression_pct": 10, "max_regression_abs": 0.5}, 2.4, 2, "pass", 2.5),
    ("lower pct+abs: pct is larger", {"direction": "lower_is_better", "max_regression_pct": 50, "max_regression_abs": 0.5}, 3.1, 2, "fail", 3),
    ("lower pct: negative baseline", {"direction": "lower_is_better", "max_regression_pct": 10}, -9.5, -10, "pass", -9),
    ("higher pct: within", {"direction": "higher_is_better", "max_regression_pct": 5}, 96, 100, "pass", 95),
    ("higher pct: exactly at", {"direction": "higher_is_better", "max_regression_pct": 5}, 95, 100, "pass", 95),
    ("higher pct: under", {"direction": "higher_is_better", "max_regression_pct": 5}, 94.9, 100, "fail", 95),
    ("higher pct: improvement", {"direction": "higher_is_better", "max_regression_pct": 0}, 120, 100, "pass", 100),
    ("higher abs", {"direction": "higher_is_better", "max_regression_abs": 2}, 7, 10, "fail", 8),
    ("equals: bool pass", {"equals": True}, True, None, "pass", True),
    ("equals: bool fail", {"equals": True}, False, None, "fail", True),
    ("equals: 1 is not true", {"equals": True}, 1, None, "fail", True),
    ("equals: string", {"equals": "converged"}, "converged", None, "pass", "converged"),
    ("equals: number", {"equals": 3}, 3.0, None, "pass", 3),
]


@pytest.mark.parametrize("name, fields, value, baseline, verdict, limit", CASES, ids=[c[0] for c in CASES])
def test_check_kinds(name: str, fields: dict, value: Any, baseline: Any, verdict: str, limit: Any) -> None:
    result = gate(fields, value, baseline)
    [check] = result.checks
    assert check.verdict == Verdict(verdict)
    if isinstance(limit, float) or isinstance(check.limit, float):
        assert check.limit == pytest.approx(limit)
    else:
        assert check.limit == limit
    assert result.exit_code == (0 if verdict == "pass" else 1)
    if verdict == "fail":
        text = check.describe()
        assert "m = " + fmt_value(value) in text and fmt_value(check.limit) in text


def test_one_rule_with_several_kinds_makes_one_check_per_kind_per_match() -> None:
    loaded = load_rules_text(
        "rules:\n  - metric: t.*.r\n    max: 3\n    min: 1\n    direction: lower_is_better\n    max_regression_pct: 10\n", "r.yaml"
    )
    report = {"t": {"a": {"r": 2}, "b": {"r": 3.5}}}
    baseline = {"t": {"a": {"r": 2}, "b": {"r": 3}}}
    result = evaluate(loaded, report, baseline, report_file="rep.json", baseline_file="base.json")
    verdicts = {(c.metric, c.kind): c.verdict.value for c in result.checks}
    assert verdicts == {
        ("t.a.r", "min"): "pass", ("t.a.r", "max"): "pass", ("t.a.r", "regression"): "pass",
        ("t.b.r", "min"): "pass", ("t.b.r", "max"): "fail", ("t.b.r", "regression"): "fail",
    }
    assert result.headline == "FAIL: 2 of 6 checks failed"


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(-1e6, 1e6, allow_nan=False),
    value=st.floats(-1e6, 1e6, allow_nan=False),
    pct=st.floats(0, 200),
    lower=st.booleans(),
)
def test_regression_verdict_matches_the_definition(base: float, value: float, pct: float, lower: bool) -> None:
    """Fails exactly when the value is worse than the baseline by more than pct percent of |baseline|."""
    direction = "lower_is_better" if lower else "higher_is_better"
    result = gate({"direction": direction, "max_regression_pct": repr(pct)}, value, base)
    [check] = result.checks
    worsening = (value - base) if lower else (base - value)
    allowed = abs(base) * pct / 100
    margin = 1e-6 * max(1.0, abs(base), abs(value))
    if worsening > allowed + margin:
        assert check.verdict == Verdict.failed
    elif worsening < allowed - margin:
        assert check.verdict == Verdict.passed
    # improvements always pass, whatever the tolerance
    if worsening <= 0:
        assert check.verdict == Verdict.passed


@pytest.mark.parametrize(
    "rules, report, baseline, fragments",
    [
        ("rules:\n  - metric: a.b\n    max: 1\n", {"a": {}}, {}, ["report.json", "rules.yaml:2:5", "metric 'a.b' not found: no key 'b' under 'a'"]),
        (
            "rules:\n  - metric: a\n    direction: lower_is_better\n    max_regression_pct: 1\n",
            {"a": 1}, {"b": 1},
            ["base.json", "metric 'a' not found in the baseline"],
        ),
        ("rules:\n  - metric: a\n    max: 1\n", {"a": "fast"}, {}, ["report.json", "metric 'a' is \"fast\", not a finite number"]),
        ("rules:\n  - metric: a\n    max: 1\n", {"a": True}, {}, ["not a finite number"]),
        ("rules:\n  - metric: a\n    max: 1\n", {"a": math.nan}, {}, ["NaN, not a finite number"]),
        (
            "rules:\n  - metric: a\n    direction: higher_is_better\n    max_regression_abs: 1\n",
            {"a": 1}, {"a": None},
            ["base.json", "is null in the baseline, not a finite number"],
        ),
        (
            "rules:\n  - metric: t.*.r\n    direction: lower_is_better\n    max_regression_pct: 5\n",
            {"t": {"a": {"r": 1}}}, {"t": {"a": {"r": 1}, "gone": {"r": 2}}},
            ["metric 't.gone.r' is in the baseline but missing from the report"],
        ),
        ("rules:\n  - metric: a\n    max: 1\n    required: false\n", {"b": 1}, {}, ["no rule in rules.yaml matched any metric"]),
    ],
    ids=["missing in report", "missing in baseline", "string value", "bool value", "nan", "null baseline", "lost from report", "nothing matched"],
)
def test_bad_input_is_a_spec_error(rules: str, report: Any, baseline: Any, fragments: list[str]) -> None:
    loaded = load_rules_text(rules, "rules.yaml")
    with pytest.raises(SpecError) as info:
        evaluate(loaded, report, baseline, report_file="report.json", baseline_file="base.json")
    assert info.value.exit_code == 2
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text


def test_all_problems_are_reported_together() -> None:
    loaded = load_rules_text("rules:\n  - metric: x\n    max: 1\n  - metric: y\n    max: 1\n", "rules.yaml")
    with pytest.raises(SpecError) as info:
        evaluate(loaded, {"z": 1}, {}, report_file="report.json", baseline_file="base.json")
    assert len(info.value.problems) == 2
    assert "rules.yaml:2:5" in str(info.value) and "rules.yaml:4:5" in str(info.value)


def test_optional_rules_skip_instead_of_failing() -> None:
    loaded = load_rules_text(
        "rules:\n  - metric: present\n    max: 1\n"
        "  - metric: absent\n    max: 1\n    required: false\n"
        "  - metric: present\n    required: false\n    direction: lower_is_better\n    max_regression_pct: 1\n",
        "rules.yaml",
    )
    result = evaluate(loaded, {"present": 0.5}, {}, report_file="r.json", baseline_file="b.json")
    assert [c.verdict.value for c in result.checks] == ["pass", "skip", "skip"]
    assert result.exit_code == 0
    assert result.headline == "PASS: 1 checks passed, 2 skipped"


def test_exclude_leaves_out_a_branch_in_report_and_baseline() -> None:
    rules = "rules:\n  - metric: agg.*.r\n    exclude: [agg.oracle]\n    direction: lower_is_better\n    max_regression_pct: 10\n"
    loaded = load_rules_text(rules, "rules.yaml")
    report = {"agg": {"ds2": {"r": 1.0}, "oracle": {"r": None}}}
    baseline = {"agg": {"ds2": {"r": 1.0}, "oracle": {}}}
    result = evaluate(loaded, report, baseline, report_file="r.json", baseline_file="b.json")
    assert [c.metric for c in result.checks] == ["agg.ds2.r"]
    only_oracle = {"agg": {"oracle": {"r": 1}}}
    with pytest.raises(SpecError, match="every match is excluded"):
        evaluate(loaded, only_oracle, only_oracle, report_file="r.json", baseline_file="b.json")


def test_bad_exclude_path_is_reported_at_its_position() -> None:
    with pytest.raises(SpecError) as info:
        load_rules_text("rules:\n  - metric: a\n    max: 1\n    exclude: [ok, 'b..c']\n", "rules.yaml")
    assert str(info.value).startswith("rules.yaml:4:19: ") and "empty segment" in str(info.value)


OPTIONAL_PER_TUNER = "rules:\n  - metric: agg.*.r\n    required: false\n    direction: lower_is_better\n    max_regression_pct: 5\n"


def optional_gate(report: Any, baseline: Any, rules: str = OPTIONAL_PER_TUNER) -> Any:
    return evaluate(load_rules_text(rules, "rules.yaml"), report, baseline, report_file="report.json", baseline_file="base.json")


def test_optional_rule_is_judged_branch_by_branch() -> None:
    """A tuner that never reports the metric (in neither file) must not hide another tuner's regression."""
    report = {"agg": {"ds2": {"other": 1}, "ct": {"r": 9.9}}}
    baseline = {"agg": {"ds2": {"other": 1}, "ct": {"r": 1.0}}}
    result = optional_gate(report, baseline)
    assert [(c.metric, c.verdict) for c in result.checks] == [("agg.ct.r", Verdict.failed)]
    assert result.exit_code == 1


@pytest.mark.parametrize(
    "report, lost",
    [
        ({"agg": {"ds2": {"other": 1}, "ct": {"r": 1.0}}}, ["agg.ds2.r"]),  # the metric dropped from one tuner
        ({"agg": {"ct": {"r": 1.0}}}, ["agg.ds2.r"]),  # the whole tuner dropped
        ({"unrelated": 1}, ["agg.ds2.r", "agg.ct.r"]),  # everything dropped
    ],
    ids=["metric lost", "tuner lost", "all lost"],
)
def test_optional_rule_still_catches_what_the_report_lost(report: Any, lost: list[str]) -> None:
    baseline = {"agg": {"ds2": {"r": 1.0}, "ct": {"r": 1.0}}}
    with pytest.raises(SpecError) as info:
        optional_gate(report, baseline)
    assert info.value.exit_code == 2
    assert len(info.value.problems) == len(lost)
    for metric in lost:
        assert f"metric {metric!r} is in the baseline but missing from the report" in str(info.value)


def test_optional_absolute_rule_catches_a_lost_metric() -> None:
    rules = "rules:\n  - metric: target_met\n    required: false\n    equals: true\n"
    with pytest.raises(SpecError, match="'target_met' is in the baseline but missing from the report"):
        optional_gate({"other": 1}, {"target_met": True}, rules)


def test_optional_rule_skips_a_new_branch_the_baseline_lacks() -> None:
    report = {"agg": {"ds2": {"r": 1.0}, "new": {"r": 50.0}}}
    baseline = {"agg": {"ds2": {"r": 1.0}}}
    result = optional_gate(report, baseline)
    assert [(c.metric, c.verdict) for c in result.checks] == [("agg.ds2.r", Verdict.passed), ("agg.new.r", Verdict.skipped)]
    assert result.exit_code == 0


def test_optional_rule_in_neither_file_is_skipped_once() -> None:
    rules = OPTIONAL_PER_TUNER + "  - metric: x\n    max: 1\n"
    result = optional_gate({"x": 0}, {"x": 0}, rules)
    assert [c.verdict for c in result.checks] == [Verdict.skipped, Verdict.passed]
    assert "not in the report or the baseline" in result.checks[0].note


def test_required_absolute_rule_catches_a_lost_branch() -> None:
    """The coverage check runs for every rule, not only those that compare with the baseline."""
    rules = "rules:\n  - metric: agg.*.r\n    max: 5\n"
    with pytest.raises(SpecError, match="'agg.gone.r' is in the baseline but missing"):
        optional_gate({"agg": {"a": {"r": 1}}}, {"agg": {"a": {"r": 1}, "gone": {"r": 1}}}, rules)
