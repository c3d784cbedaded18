"""Error messages stay short (issue 15): values are quoted as excerpts, long problem lists are cut."""

from __future__ import annotations

import pytest

from streamtune_cli.errors import EXCERPT_CHARS, MAX_PROBLEMS_SHOWN, Location, Problem, SpecError, excerpt
from streamtune_cli.spec import load_spec_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "'abc'"), (42, "42"), (None, "None"), (1.5, "1.5")],
)
def test_short_values_are_quoted_whole(value: object, expected: str) -> None:
    assert excerpt(value) == expected


@pytest.mark.parametrize(
    "value",
    ["x" * 100_000, "é" * 5000, 10**300, 10**5000, list(range(10_000))],
    ids=["ascii", "unicode", "int-300-digits", "int-5000-digits", "list"],
)
def test_long_values_are_cut_and_say_how_long_they_were(value: object) -> None:
    text = excerpt(value)
    assert len(text) <= EXCERPT_CHARS + 40
    assert "characters" in text or "digits" in text


def test_long_problem_lists_are_cut_after_the_first_ones() -> None:
    problems = [Problem(Location("f.yaml", i + 1, 1), f"problem {i}") for i in range(500)]
    text = SpecError(problems).render()
    assert text.startswith("f.yaml: 500 problems")
    assert f"problem {MAX_PROBLEMS_SHOWN - 1}" in text and f"problem {MAX_PROBLEMS_SHOWN}\n" not in text
    assert f"and {500 - MAX_PROBLEMS_SHOWN} more" in text


def test_a_spec_with_thousands_of_bad_operators_gives_a_bounded_message() -> None:
    ops = "".join(f"  - {{id: op{i}, kind: map, cost_us: -1}}\n" for i in range(5000))
    text = "name: x\nworkload: {rate_rps: 10}\noperators:\n" + ops
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "many.yaml")
    assert len(info.value.problems) >= 5000  # all found, for tools that read them
    assert len(str(info.value)) < 20_000  # a screenful or so printed


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("id: a,", "id: " + "a" * 50_000 + ","),
        ("to: b}", "to: " + "b" * 50_000 + "}"),
        ("name: x", "name: x\nx" + "y" * 50_000 + ": 1"),
    ],
    ids=["duplicate-id", "unknown-edge-end", "unknown-field"],
)
def test_messages_about_huge_values_stay_short(old: str, new: str) -> None:
    text = (
        "name: x\nworkload: {rate_rps: 10}\noperators:\n  - {id: a, kind: source}\n  - {id: a, kind: sink}\n"
        "  - {id: b, kind: sink}\nedges:\n  - {from: a, to: b}\n"
    )
    assert old in text
    with pytest.raises(SpecError) as info:
        load_spec_text(text.replace(old, new, 1), "job.yaml")
    for line in str(info.value).splitlines():
        assert len(line) < 400, line[:200]
