"""Gate rules: the metric-path syntax (dotted paths, indices, quoted keys, wildcards) and the rules-file
models, loaded from YAML with every problem reported as file:line:col.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from streamtune_cli.errors import Location
from streamtune_cli.io import MAX_JSON_INT_DIGITS
from streamtune_cli.spec.loader import validate_model
from streamtune_cli.spec.yaml_positions import load_yaml_file, load_yaml_text

__all__ = [
    "rules_from_doc",
    "Key",
    "Index",
    "Glob",
    "Segment",
    "MetricPath",
    "MissingMetric",
    "parse_metric_path",
    "format_path",
    "expand",
    "expand_present",
    "lookup",
    "covers",
    "Direction",
    "GateRule",
    "GateRules",
    "LoadedRules",
    "load_rules",
    "load_rules_text",
]

# --------------------------------------------------------------------------------------------------
# Metric paths
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A mapping key. Written bare in dotted form (`a.b`), an all-digit key also indexes a list (`steps.0`)."""

    name: str
    bare: bool = True


@dataclass(frozen=True)
class Index:
    """A list index written in brackets (`[0]`, `[-1]`); negative counts from the end."""

    index: int


@dataclass(frozen=True)
class Glob:
    """`*` (any key or list index) or an fnmatch pattern over mapping keys (`q*`, `tuner_?`)."""

    pattern: str


Segment = Union[Key, Index, Glob]
MetricPath = tuple[Segment, ...]
Concrete = tuple[Union[str, int], ...]

_BARE = re.compile(r"[^.\[\]\"']+")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def parse_metric_path(text: str) -> MetricPath:
    """Parse `a.b[0]["key.with.dots"].*.c` into segments; ValueError names the offending character."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("metric path is empty")
    if text != text.strip():
        raise ValueError(f"metric path {text!r} has leading or trailing spaces")
    segments: list[Segment] = []
    pos = 0
    expect_name = True  # at the start and after '.', a bare segment (or a bracket at the very start)

    def fail(reason: str, at: int) -> ValueError:
        return ValueError(f"metric path {text!r}: {reason} at character {at + 1}")

    while pos < len(text):
        ch = text[pos]
        if ch == "[":
            if expect_name and segments:
                raise fail("'[' right after '.'", pos)
            segment, pos = _parse_bracket(text, pos, fail)
            segments.append(segment)
            expect_name = False
            continue
        if ch == ".":
            if expect_name:
                raise fail("empty segment", pos)
            expect_name = True
            pos += 1
            continue
        if not expect_name:
            raise fail(f"expected '.' or '[' before {ch!r}", pos)
        match = _BARE.match(text, pos)
        if match is None:
            raise fail(f"unexpected {ch!r} (quote keys in brackets: [\"a.b\"])", pos)
        word = match.group(0)
        if word != word.strip():
            raise fail("a bare segment cannot start or end with a space (quote it in brackets)", pos)
        segments.append(Glob(word) if any(c in word for c in "*?") else Key(word))
        pos = match.end()
        expect_name = False
    if expect_name:
        raise fail("path ends with '.'", len(text) - 1)
    return tuple(segments)


def _parse_bracket(text: str, start: int, fail: Any) -> tuple[Segment, int]:
    pos = start + 1
    if pos >= len(text):
        raise fail("unclosed '['", start)
    quote = text[pos]
    if quote in "\"'":
        # Scan to the closing quote, skipping backslash escapes; "..." then decodes as a JSON string
        # (so format_path's json.dumps output always parses back), '...' takes escaped characters as they are.
        close = pos + 1
        while close < len(text) and text[close] != quote:
            close += 2 if text[close] == "\\" else 1
        if close >= len(text):
            raise fail("unclosed quote", pos)
        raw = text[pos + 1 : close]
        if quote == '"':
            try:
                name = json.loads(text[pos : close + 1])
            except json.JSONDecodeError as exc:
                raise fail(f"bad escape in quoted key ({exc.msg})", pos) from None
        else:
            name = re.sub(r"\\(.)", r"\1", raw, flags=re.S)
        pos = close + 1
        if pos >= len(text) or text[pos] != "]":
            raise fail("expected ']' after the quoted key", pos)
        return Key(name, bare=False), pos + 1
    end = text.find("]", pos)
    if end < 0:
        raise fail("unclosed '['", start)
    inner = text[pos:end].strip()
    if inner == "*":
        return Glob("*"), end + 1
    if re.fullmatch(r"-?\d+", inner):
        return Index(int(inner)), end + 1
    raise fail(f"[{inner}] is neither an integer index, '*' nor a quoted key", start)


def format_path(path: Concrete) -> str:
    """The canonical text of a concrete path; parse_metric_path(format_path(p)) finds the same value."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _SIMPLE_KEY.fullmatch(part):
            out.append(("." if out else "") + part)
        else:
            out.append("[" + json.dumps(part, ensure_ascii=False) + "]")
    return "".join(out)


class MissingMetric(Exception):
    """The path does not lead to a value; `at` is the concrete prefix that exists, `reason` says why not."""

    def __init__(self, at: Concrete, reason: str):
        self.at = at
        self.reason = reason
        super().__init__(reason)


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    if node is None:
        return "null"
    return f"{type(node).__name__} {json.dumps(node)}"


def _where(at: Concrete) -> str:
    return f"under {format_path(at)!r}" if at else "at the top level"


def _keys_hint(node: dict[str, Any]) -> str:
    keys = list(node)
    shown = ", ".join(map(str, keys[:12])) + (", ..." if len(keys) > 12 else "")
    return f" (has: {shown})" if keys else " (it is empty)"


def _step(node: Any, segment: Segment, at: Concrete) -> list[tuple[str | int, Any]]:
    """The children one segment selects; MissingMetric when a concrete segment selects nothing."""
    if isinstance(segment, Glob):
        if isinstance(node, dict):
            picked = [(k, v) for k, v in node.items() if fnmatch.fnmatchcase(str(k), segment.pattern)]
        elif isinstance(node, list) and segment.pattern == "*":
            picked = list(enumerate(node))
        else:
            raise MissingMetric(at, f"{segment.pattern!r} {_where(at)} needs a mapping{' or list' if segment.pattern == '*' else ''}, found {_describe(node)}")
        if not picked:
            hint = _keys_hint(node) if isinstance(node, dict) else " (the list is empty)"
            raise MissingMetric(at, f"nothing matches {segment.pattern!r} {_where(at)}{hint}")
        return picked
    if isinstance(segment, Key):
        if isinstance(node, dict):
            if segment.name in node:
                return [(segment.name, node[segment.name])]
            raise MissingMetric(at, f"no key {segment.name!r} {_where(at)}{_keys_hint(node)}")
        if isinstance(node, list) and segment.bare and segment.name.isdigit():
            return _step(node, Index(int(segment.name)), at)
        raise MissingMetric(at, f"key {segment.name!r} {_where(at)} needs a mapping, found {_describe(node)}")
    if isinstance(node, list):
        index = segment.index + len(node) if segment.index < 0 else segment.index
        if 0 <= index < len(node):
            return [(index, node[index])]
        raise MissingMetric(at, f"index {segment.index} {_where(at)} is out of range (length {len(node)})")
    raise MissingMetric(at, f"index [{segment.index}] {_where(at)} needs a list, found {_describe(node)}")


def expand(data: Any, path: MetricPath, skip: Callable[[Concrete], bool] | None = None) -> list[tuple[Concrete, Any]]:
    """Every (concrete path, value) the path selects, in document order.

    Strict: a wildcard branch that lacks the rest of the path is an error, not silently dropped, so a
    tuner that stops reporting a metric cannot slip past a gate. Only branches `skip` names (a rule's
    `exclude`) are left out, checked as soon as they are reached so their contents do not matter.
    """
    frontier: list[tuple[Concrete, Any]] = [((), data)]
    for segment in path:
        frontier = [(at + (key,), child) for at, node in frontier for key, child in _step(node, segment, at)]
        if skip is not None:
            frontier = [(at, node) for at, node in frontier if not skip(at)]
    return frontier


def expand_present(
    data: Any, path: MetricPath, skip: Callable[[Concrete], bool] | None = None
) -> tuple[list[tuple[Concrete, Any]], list[MissingMetric]]:
    """Lenient expand: the (concrete path, value) pairs that exist, plus why each other branch ended early.

    For optional rules, which judge branch by branch: one tuner lacking a metric must not hide the others.
    """
    frontier: list[tuple[Concrete, Any]] = [((), data)]
    missing: list[MissingMetric] = []
    for segment in path:
        next_frontier: list[tuple[Concrete, Any]] = []
        for at, node in frontier:
            try:
                next_frontier.extend((at + (key,), child) for key, child in _step(node, segment, at))
            except MissingMetric as exc:
                missing.append(exc)
        frontier = next_frontier
        if skip is not None:
            frontier = [(at, node) for at, node in frontier if not skip(at)]
    return frontier, missing


def covers(pattern: MetricPath, concrete: Concrete) -> bool:
    """Whether a concrete path lies at or under what the pattern names (used by a rule's `exclude`)."""
    if len(pattern) > len(concrete):
        return False
    for segment, part in zip(pattern, concrete):
        if isinstance(segment, Glob):
            ok = fnmatch.fnmatchcase(part, segment.pattern) if isinstance(part, str) else segment.pattern == "*"
        elif isinstance(segment, Key):
            ok = part == segment.name or (segment.bare and isinstance(part, int) and segment.name == str(part))
        else:
            ok = part == segment.index
        if not ok:
            return False
    return True


def lookup(data: Any, concrete: Concrete) -> Any:
    """The value at a concrete path (as produced by expand); MissingMetric when it is not there."""
    path = tuple(Index(p) if isinstance(p, int) else Key(p, bare=False) for p in concrete)
    return expand(data, path)[0][1]


# --------------------------------------------------------------------------------------------------
# Rules file
# --------------------------------------------------------------------------------------------------


class Direction(str, Enum):
    lower_is_better = "lower_is_better"
    higher_is_better = "higher_is_better"


Scalar = Union[bool, int, float, str]


def _check_path(value: str) -> str:
    parse_metric_path(value)
    return value


def _check_exclude(value: str) -> str:
    if any(isinstance(seg, Index) and seg.index < 0 for seg in parse_metric_path(value)):
        # A branch is excluded before the data is looked at, so an index from the end has nothing to count from.
        raise ValueError(f"exclude path {value!r}: negative indices cannot be excluded (count from the start)")
    return value


# Validated per item, so a bad path inside a list is reported at the item's own line:column.
PathText = Annotated[str, AfterValidator(_check_path)]
ExcludeText = Annotated[str, AfterValidator(_check_exclude)]


class GateRule(BaseModel):
    """One rule: a metric path and the checks applied to every value it selects."""

    model_config = ConfigDict(extra="forbid")

    metric: PathText = Field(description="Path into the report JSON; see docs/ci.md for the syntax.")
    name: str | None = Field(None, description="Label in tables and JUnit; defaults to the metric path.")
    description: str | None = None
    direction: Direction | None = Field(None, description="Needed by the relative regression check.")
    max_regression_pct: float | None = Field(None, ge=0, description="Allowed worsening vs the baseline, percent of |baseline|.")
    max_regression_abs: float | None = Field(None, ge=0, description="Allowed worsening in the metric's own unit.")
    min: float | None = Field(None, description="Absolute lower bound (inclusive).")
    max: float | None = Field(None, description="Absolute upper bound (inclusive).")
    equals: Scalar | None = Field(None, description="The value must be exactly this (true, a string, a number).")
    required: bool = Field(True, description="false: a metric absent from the report or baseline is skipped, not an error.")
    exclude: list[ExcludeText] = Field(
        default_factory=list, description="Branches (same path syntax, wildcards allowed) left out of the metric's matches."
    )

    @field_validator("min", "max", "max_regression_pct", "max_regression_abs")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("equals")
    @classmethod
    def _bounded(cls, value: Scalar | None) -> Scalar | None:
        # The same bound as JSON inputs (io.MAX_JSON_INT_DIGITS): a longer integer can never equal a report value.
        if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) > MAX_JSON_INT_DIGITS:
            raise ValueError(f"an integer of {len(str(abs(value)))} digits is out of range (at most {MAX_JSON_INT_DIGITS} digits)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number, true, false or a string")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "GateRule":
        relative = self.max_regression_pct is not None or self.max_regression_abs is not None
        if relative and self.direction is None:
            raise ValueError("a regression tolerance needs direction: lower_is_better or higher_is_better")
        if self.direction is not None and not relative:
            raise ValueError("direction is set but neither max_regression_pct nor max_regression_abs is")
        if not relative and self.min is None and self.max is None and "equals" not in self.model_fields_set:
            raise ValueError("the rule checks nothing: give min, max, equals or direction + max_regression_pct/_abs")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is greater than max {self.max:g}")
        return self

    @property
    def label(self) -> str:
        return self.name or self.metric

    @property
    def path(self) -> MetricPath:
        return parse_metric_path(self.metric)

    def excluded(self, concrete: Concrete) -> bool:
        return any(covers(parse_metric_path(text), concrete) for text in self.exclude)

    @property
    def has_equals(self) -> bool:
        return "equals" in self.model_fields_set


class GateRules(BaseModel):
    """A rules file: an optional suite name and the rules, checked in order."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(1, ge=1, le=1)
    name: str = "streamtune gate"
    description: str | None = None
    rules: list[GateRule] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedRules:
    """Validated rules plus where each rule sits in its file, so a check can point back at its rule."""

    rules: GateRules
    file: str
    rule_locations: tuple[Location, ...]


def rules_from_doc(doc: Any) -> LoadedRules:
    """Validate a parsed rules document (see load_rules)."""
    rules = validate_model(doc, GateRules, "rules file")
    locations = tuple(doc.locate(("rules", i)) for i in range(len(rules.rules)))
    return LoadedRules(rules, doc.file, locations)


def load_rules(path: str | Path) -> LoadedRules:
    """Load and validate a gate rules YAML file; SpecError with file:line:col for every problem."""
    return rules_from_doc(load_yaml_file(path))


def load_rules_text(text: str, file: str = "<string>") -> LoadedRules:
    return rules_from_doc(load_yaml_text(text, file))
