"""Rules files: valid ones load; every kind of broken one is a SpecError naming file:line:col."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from streamtune_cli.errors import SpecError
from streamtune_cli.gate_rules import Direction, load_rules, load_rules_text

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: demo
rules:
  - name: reconfigurations
    metric: tuners.*.mean_reconfigurations
    direction: lower_is_better
    max_regression_pct: 10
  - metric: target_met
    equals: true
  - metric: savings_pct
    min: 0
    max: 100
"""


def position_of(text: str, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the first occurrence, computed independently of the loader."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def test_good_rules_load_with_positions() -> None:
    loaded = load_rules_text(GOOD, "rules.yaml")
    assert loaded.rules.name == "demo"
    first, second, third = loaded.rules.rules
    assert first.direction == Direction.lower_is_better and first.max_regression_pct == 10
    assert second.has_equals and second.equals is True
    assert third.min == 0 and third.max == 100 and not third.has_equals
    assert first.label == "reconfigurations" and second.label == "target_met"
    assert [(loc.line, loc.column) for loc in loaded.rule_locations] == [
        position_of(GOOD, "name: reconfigurations"),
        position_of(GOOD, "metric: target_met"),
        position_of(GOOD, "metric: savings_pct"),
    ]


BROKEN = {
    # name: (replace old -> new in GOOD, text whose position the error names, message fragment)
    "bad path": ("tuners.*.mean_reconfigurations", "tuners..mean", "metric: tuners..mean", "empty segment"),
    "unknown field": ("max_regression_pct: 10", "max_regresion_pct: 10", "max_regresion_pct", "unknown field 'max_regresion_pct'"),
    "bad direction": ("direction: lower_is_better", "direction: smaller", "direction: smaller", "direction"),
    "negative tolerance": ("max_regression_pct: 10", "max_regression_pct: -1", "max_regression_pct: -1", "greater than or equal to 0"),
    "tolerance without direction": ("    direction: lower_is_better\n", "", "name: reconfigurations", "needs direction"),
    "direction without tolerance": ("    max_regression_pct: 10\n", "", "name: reconfigurations", "neither max_regression_pct"),
    "checks nothing": ("    equals: true\n", "", "metric: target_met", "checks nothing"),
    "min above max": ("min: 0", "min: 200", "metric: savings_pct", "min 200 is greater than max 100"),
    "missing metric": ("  - metric: target_met\n    equals: true\n", "  - equals: true\n", "equals: true", "missing required field 'metric'"),
    "not a number": ("max: 100", "max: lots", "max: lots", "max"),
    "yaml syntax": ("max: 100", "max: [100", None, "YAML syntax error"),
    "no rules": (GOOD[GOOD.index("rules:"):], "rules: []\n", "rules: []", "at least 1"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_rules_name_file_line_col(name: str) -> None:
    old, new, where, fragment = BROKEN[name]
    assert old in GOOD
    text = GOOD.replace(old, new)
    with pytest.raises(SpecError) as info:
        load_rules_text(text, "rules.yaml")
    problem = info.value.problems[0]
    assert problem.location.file == "rules.yaml"
    assert fragment in problem.message, problem.message
    if where is not None:
        assert (problem.location.line, problem.location.column) == position_of(text, where)
    assert str(problem).startswith(f"rules.yaml:{problem.location.line}:{problem.location.column}: ")


def test_rules_file_that_is_not_a_mapping() -> None:
    with pytest.raises(SpecError, match="rules.yaml:1:1: a rules file must be a mapping"):
        load_rules_text("- metric: a\n", "rules.yaml")


def test_missing_rules_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="nope.yaml: no such file"):
        load_rules(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "configs/gates/*.yaml"))), ids=lambda p: Path(p).name)
def test_shipped_rules_files_load(path: str) -> None:
    assert load_rules(path).rules.rules
