"""The YAML loader's limits (issue 15): depth, value count and bad bytes are refused while parsing, with a
position, never with a RecursionError or after building the whole document."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamtune_cli.errors import SpecError
from streamtune_cli.spec import load_spec, load_spec_text
from streamtune_cli.spec import yaml_positions
from streamtune_cli.spec.models import MAX_OPERATORS
from streamtune_cli.spec.yaml_positions import MAX_YAML_DEPTH, load_yaml_file, load_yaml_text

ROOT = Path(__file__).resolve().parents[2]
Q1 = (ROOT / "configs" / "nexmark" / "q1.yaml").read_text()


def error_of(text: str, file: str = "job.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, file)
    return info.value


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 500 + "]" * 500,  # the 1 KB file nested 500 deep
        "{a: " * 500 + "1" + "}" * 500,
        "".join(f"\n{'  ' * (i + 1)}k{i}:" for i in range(300)) + " 1",  # block style
        "[" * 100_000,  # unterminated: the depth cap speaks before the syntax error at the end
    ],
    ids=["flow-seq", "flow-map", "block-map", "unterminated"],
)
def test_deep_nesting_is_refused_with_a_position(nested: str) -> None:
    text = "name: deep\nworkload: " + nested + "\n"
    error = error_of(text)
    problem = error.problems[0]
    if nested.endswith("["):
        # libyaml looks ahead to the end for the key an open bracket may start: a syntax error, positioned.
        assert f"deeper than {MAX_YAML_DEPTH} levels" in problem.message or "syntax error" in problem.message
    else:
        assert f"deeper than {MAX_YAML_DEPTH} levels" in problem.message
    assert problem.location.line is not None and problem.location.line >= 2 and problem.location.column


def test_nesting_up_to_the_cap_still_parses() -> None:
    depth = MAX_YAML_DEPTH - 1  # the root mapping is one level
    doc = load_yaml_text("a: " + "[" * depth + "1" + "]" * depth + "\n")
    node = doc.data["a"]
    for _ in range(depth - 1):
        node = node[0]
    assert node == [1]


def test_the_value_cap_is_checked_while_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a cap of 1,000 values the 1,001st (the root mapping, then two values a line: the value on line
    # 500) is where the loader stops, not the end of a 5,000-line file: it never built the rest.
    monkeypatch.setattr(yaml_positions, "MAX_YAML_VALUES", 1000)
    text = "".join(f"k{i}: {i}\n" for i in range(5000))
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, "many.yaml")
    problem = info.value.problems[0]
    assert (problem.location.line, problem.location.column) == (500, 7)
    assert "more than 1,000 values" in problem.message
    assert "alias" not in problem.message  # this document has none


def test_an_alias_bomb_says_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    error = error_of("\n".join(lines) + "\n")
    assert "from YAML aliases" in str(error) and "expands to more than" in str(error)


def test_too_many_operators_gets_a_message_about_operators_not_aliases() -> None:
    text = "name: x\nworkload: {rate_rps: 10}\noperators:\n" + "".join(
        f"  - {{id: o{i}, kind: map}}\n" for i in range(MAX_OPERATORS + 1)
    )
    error = error_of(text)
    assert len(error.problems) == 1
    message = str(error)
    assert f"at most {MAX_OPERATORS:,} entries" in message and f"got {MAX_OPERATORS + 1:,}" in message
    assert "alias" not in message
    assert error.problems[0].location.line == 3


@pytest.mark.parametrize(
    ("raw", "line", "col"),
    [(b"name: \xff\xfe bad\n", 1, 7), (b"name: x\ndescription: caf\xc3\x28\n", 2, 17), (b"a: 1\nb: \xed\xa0\x80\n", 2, 4)],
)
def test_spec_that_is_not_utf8_gets_line_and_column(tmp_path: Path, raw: bytes, line: int, col: int) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(raw)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    location = info.value.problems[0].location
    assert (location.file, location.line, location.column) == (str(path), line, col)
    assert "UTF-8" in str(info.value)


def test_control_characters_get_a_position_and_their_code() -> None:
    error = error_of("name: x\nworkload:\n  rate_rps: 1\x01\n")
    assert (error.problems[0].location.line, error.problems[0].location.column) == (3, 14)
    assert "U+0001" in str(error)


@pytest.mark.parametrize(
    ("value", "message"),
    [("9" * 5000, "a number this long"), ("2024-13-45", "month"), ("!!binary '@@@'", "")],
    ids=["int-past-digit-limit", "bad-timestamp", "bad-base64"],
)
def test_values_the_constructor_cannot_build_are_errors_at_their_position(value: str, message: str) -> None:
    error = error_of(f"name: x\nworkload: {{rate_rps: {value}}}\n")
    problem = error.problems[0]
    assert problem.location.line == 2 and problem.location.column
    assert message in str(error)
    assert len(str(error)) < 400  # never the whole 5,000-digit value


def test_second_document_and_undefined_alias_are_errors() -> None:
    assert "single YAML document" in str(error_of("name: x\n---\nname: y\n"))
    error = error_of("name: x\nworkload: *nowhere\n")
    assert "undefined YAML alias" in str(error) and error.problems[0].location.line == 2


def test_merge_keys_follow_yaml_merge_semantics() -> None:
    doc = load_yaml_text(
        "base: &b {x: 1, y: 2}\nother: &o {y: 20, z: 30}\nm:\n  <<: [*b, *o]\n  x: 100\n", "m.yaml"
    )
    # Explicit keys win; among merged mappings the first one that has a key gives it.
    assert doc.data["m"] == {"y": 2, "z": 30, "x": 100}
    assert doc.locate(("m", "x")).line == 5
    assert doc.locate(("m", "z")).line == 2  # a merged value points where it is written


def test_merged_operator_fields_are_validated_with_positions() -> None:
    text = Q1.replace("  - id: to_euro\n", "  - &euro\n    id: to_euro\n", 1)
    assert text != Q1
    text = text.replace("edges:", "  - <<: *euro\n    id: copy\n    cost_us: -1\nedges:", 1)
    error = error_of(text)
    assert any("cost_us" in p.message and p.location.line == text[: text.index("cost_us: -1")].count("\n") + 1 for p in error.problems)


def test_missing_file_directory_and_device_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_yaml_file(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="directory"):
        load_yaml_file(tmp_path)
    with pytest.raises(SpecError, match="not a regular file"):
        load_yaml_file("/dev/zero")
