"""CI performance gates: compare a JSON report (tune, fuse, bench) with a baseline under YAML rules, and
render the verdicts as a rich table, JUnit XML and a Markdown step summary. Exit 0 pass, 1 regression, 2 bad input.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from streamtune_cli.errors import Location, Problem, SpecError
from streamtune_cli.gate_rules import (
    Concrete,
    Direction,
    GateRule,
    LoadedRules,
    MissingMetric,
    expand,
    expand_present,
    format_path,
    load_rules,
    lookup,
)
from streamtune_cli.io import locate_json_path, read_json_file

__all__ = [
    "DEFAULT_RULES",
    "Verdict",
    "Check",
    "GateResult",
    "ReportKind",
    "report_kind",
    "check_same_kind",
    "load_json_report",
    "evaluate",
    "run_gate",
    "gate_junit_xml",
    "gate_markdown",
    "gate_table",
    "gate_json",
    "failure_lines",
    "skipped_line",
    "fmt_value",
]

# Shipped next to the package in this repository (editable installs); --rules overrides it.
# The default rules ship inside the package (package data), so an installed streamtune finds them too.
DEFAULT_RULES = Path(__file__).resolve().parent / "data" / "gates" / "default.yaml"

# `schema` of every JSON streamtune writes: streamtune.<kind>/<N>; kind and N are what gates compare.
SCHEMA_NAME = re.compile(r"streamtune\.([a-z][a-z0-9-]*)/([1-9][0-9]{0,5})")
# Files written before `schema` existed, recognized by keys only their kind has (all must be present).
_KIND_SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bench", ("aggregates", "runs", "suite")),
    ("fusion", ("savings", "stages", "edges", "tasks_saved")),
    ("tune-summary", ("reconfigurations", "final_total_parallelism", "target_met", "final_parallelism")),
    ("trace", ("steps", "spec", "executor", "tuner")),
)

# Float noise (a 10% tolerance on 0.3 is 0.33000000000000002) must not turn an exact hit into a failure.
_REL_EPS = 1e-9


class Verdict(str, Enum):
    passed = "pass"
    failed = "fail"
    skipped = "skip"


@dataclass(frozen=True)
class Check:
    """One rule applied to one metric value: the unit a JUnit testcase and a table row stand for."""

    rule: str
    rule_location: Location
    metric: str
    kind: str  # min | max | regression | equals | missing
    verdict: Verdict
    check: str = "—"  # the check as a reader says it: "max", "≤ base +10%" (lower is better, 10% allowed)
    value: Any = None
    baseline: Any = None
    limit: Any = None
    comparison: str = ""  # how value must relate to limit: "<=", ">=", "=="
    change_pct: float | None = None
    note: str = ""

    @property
    def limit_text(self) -> str:
        if self.kind == "missing":
            return "—"
        return f"{self.comparison} {fmt_value(self.limit)}"

    def describe(self) -> str:
        """One line with the metric, its value and the limit: what a reader of a failed build needs."""
        if self.kind == "missing":
            return f"{self.metric}: skipped ({self.note})"
        text = f"{self.metric} = {fmt_value(self.value)}, limit {self.limit_text}"
        extras = []
        if self.baseline is not None:
            extras.append(f"baseline {fmt_value(self.baseline)}")
        if self.change_pct is not None:
            extras.append(f"{self.change_pct:+.1f}%")
        if self.kind == "regression":
            extras.append(f"allowed: {self.check}")
        return text + (f" ({', '.join(extras)})" if extras else "") + f" [rule {self.rule!r}]"


@dataclass(frozen=True)
class ReportKind:
    """What a gated JSON file is: its schema's kind and version, read from `schema` or inferred from its keys.

    `kind` None: no `schema` and no streamtune report's keys (a hand-written file); nothing to compare.
    A `schema` that is not streamtune's (`myorg.perf/3`) is kept whole as the kind and compared literally.
    """

    kind: str | None
    version: int | None = None
    inferred: bool = False

    def __str__(self) -> str:
        if self.kind is None:
            return "unknown kind (no schema)"
        if "/" in self.kind or "." in self.kind:
            return self.kind
        name = f"streamtune.{self.kind}" + (f"/{self.version}" if self.version is not None else "")
        return name + (" (no schema; inferred from its keys)" if self.inferred else "")


def report_kind(data: Any, file: str | Path) -> ReportKind:
    """The kind of a parsed report or baseline; a malformed streamtune schema name is bad input at its position."""
    if not isinstance(data, dict):
        return ReportKind(None)
    schema = data.get("schema")
    if isinstance(schema, str):
        match = SCHEMA_NAME.fullmatch(schema)
        if match:
            return ReportKind(match.group(1), int(match.group(2)))
        if schema.startswith("streamtune"):
            shown = schema if len(schema) <= 60 else schema[:57] + "..."
            raise SpecError([Problem(locate_json_path(file, ("schema",)), f"schema {shown!r} is not a streamtune schema name (streamtune.<kind>/<N>)")])
        return ReportKind(schema[:200])
    if schema is not None:
        raise SpecError([Problem(locate_json_path(file, ("schema",)), f"schema must be a string such as \"streamtune.bench/2\", not {fmt_value(schema)[:60]}")])
    for kind, keys in _KIND_SIGNATURES:
        if all(key in data for key in keys):
            version = data.get("format_version") if kind == "bench" else None
            return ReportKind(kind, version if isinstance(version, int) and not isinstance(version, bool) else None, inferred=True)
    return ReportKind(None)


def check_same_kind(report: ReportKind, baseline: ReportKind, report_file: str, baseline_file: str) -> None:
    """Bad input (one line) when report and baseline are known to be different kinds of report.

    Versions may differ (a bench/2 report against a bench/1 baseline): the rules then say what is missing.
    A file whose kind is unknown (no schema, not recognizable) is not refused: old hand-made baselines stay usable.
    """
    if report.kind is not None and baseline.kind is not None and report.kind != baseline.kind:
        raise SpecError(
            [Problem(Location(report_file), f"report is {report}, but baseline {baseline_file} is {baseline}: a gate compares reports of the same kind")]
        )


@dataclass
class GateResult:
    """Every check of one gate run, with the files it read; exit_code is 0 or 1 (bad input never gets here)."""

    report: str
    baseline: str
    rules_file: str
    suite: str
    checks: list[Check] = field(default_factory=list)
    kinds: tuple[ReportKind, ReportKind] = (ReportKind(None), ReportKind(None))

    @property
    def kind_line(self) -> str:
        """One line saying what was compared: `kind: streamtune.fusion/1` (and how each file's kind was known)."""
        report, baseline = self.kinds
        if report.kind is None and baseline.kind is None:
            return "kind: not checked (neither file has a schema or a streamtune report's keys)"
        if str(report) == str(baseline):
            return f"kind: {report}"
        return f"kind: report {report}, baseline {baseline}"

    def count(self, verdict: Verdict) -> int:
        return sum(1 for c in self.checks if c.verdict == verdict)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == Verdict.failed]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def headline(self) -> str:
        total, failed, skipped = len(self.checks), self.count(Verdict.failed), self.count(Verdict.skipped)
        skipped_text = f", {skipped} skipped" if skipped else ""
        if failed:
            return f"FAIL: {failed} of {total - skipped} checks failed{skipped_text}"
        return f"PASS: {total - skipped} checks passed{skipped_text}"


def fmt_value(value: Any) -> str:
    """Numbers short but exact enough to compare by eye; JSON spelling for everything else."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return json.dumps(value)  # NaN / Infinity, as the JSON file spells them
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value)) if abs(value) >= 1e6 else f"{value:g}"
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return json.dumps(value)


def load_json_report(path: str | Path, role: str = "report") -> Any:
    """Read a JSON file; a missing, unreadable, malformed or absurdly nested file is a SpecError naming it."""
    return read_json_file(path, f"{role} file")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _change_pct(value: float, baseline: float) -> float | None:
    return None if baseline == 0 else (value - baseline) / abs(baseline) * 100.0


def _same(value: Any, expected: Any) -> bool:
    # JSON true is not 1: a boolean only equals a boolean, while 3 and 3.0 are the same number.
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    return value == expected


def _within(value: float, comparison: str, limit: float) -> bool:
    slack = _REL_EPS * max(1.0, abs(limit))
    return value <= limit + slack if comparison == "<=" else value >= limit - slack


class _Evaluator:
    """Applies rules to one (report, baseline) pair, collecting checks and bad-input problems."""

    def __init__(self, report: Any, baseline: Any, report_file: str, baseline_file: str):
        self.report = report
        self.baseline = baseline
        self.report_file = report_file
        self.baseline_file = baseline_file
        self.checks: list[Check] = []
        self.problems: list[Problem] = []

    def problem(self, file: str, rule: GateRule, where: Location, message: str) -> None:
        self.problems.append(Problem(Location(file), f"rule {rule.label!r} ({where}): {message}"))

    def skip(self, rule: GateRule, where: Location, metric: str, why: str) -> None:
        self.checks.append(Check(rule.label, where, metric, "missing", Verdict.skipped, note=why))

    def apply(self, rule: GateRule, where: Location) -> None:
        if rule.required:
            self._apply_required(rule, where)
        else:
            self._apply_optional(rule, where)

    def _apply_required(self, rule: GateRule, where: Location) -> None:
        try:
            matches = expand(self.report, rule.path, skip=rule.excluded)
        except MissingMetric as exc:
            self.problem(self.report_file, rule, where, f"metric {rule.metric!r} not found: {exc.reason}")
            return
        if not matches:
            self._all_excluded(rule, where)
            return
        self._baseline_coverage(rule, where, {c for c, _ in matches})
        for concrete, value in matches:
            self._checks_for(rule, where, concrete, value)

    def _apply_optional(self, rule: GateRule, where: Location) -> None:
        """Judged branch by branch: only a metric that neither the report nor the baseline has is skipped.

        One tuner lacking a metric must not hide the others' regressions, and a value the baseline has
        and the report lost is bad input like for a required rule (else dropping a row would pass).
        """
        matches, missing = expand_present(self.report, rule.path, skip=rule.excluded)
        in_baseline, _ = expand_present(self.baseline, rule.path, skip=rule.excluded)
        if not matches and not in_baseline:
            if missing:
                self.skip(rule, where, rule.metric, f"not in the report or the baseline: {missing[0].reason}")
            else:
                self._all_excluded(rule, where)
            return
        self._baseline_coverage(rule, where, {c for c, _ in matches}, in_baseline)
        for concrete, value in matches:
            self._checks_for(rule, where, concrete, value)

    def _all_excluded(self, rule: GateRule, where: Location) -> None:
        self.problem(self.report_file, rule, where, f"metric {rule.metric!r}: every match is excluded by exclude: {rule.exclude}")

    def _baseline_coverage(
        self, rule: GateRule, where: Location, in_report: set[Concrete], in_baseline: list[tuple[Concrete, Any]] | None = None
    ) -> None:
        """A value the baseline had and the report lost (a tuner no longer reported) is bad input, not a pass."""
        if in_baseline is None:
            in_baseline, _ = expand_present(self.baseline, rule.path, skip=rule.excluded)
        for concrete, _ in in_baseline:
            if concrete not in in_report:
                self.problem(
                    self.report_file, rule, where,
                    f"metric {format_path(concrete)!r} is in the baseline but missing from the report "
                    "(accept its loss with --update-baseline if it is deliberate)",
                )

    def _checks_for(self, rule: GateRule, where: Location, concrete: Concrete, value: Any) -> None:
        metric = format_path(concrete)
        needs_baseline = rule.direction is not None
        try:
            base = lookup(self.baseline, concrete)
        except MissingMetric as exc:
            if needs_baseline:
                if rule.required:
                    self.problem(self.baseline_file, rule, where, f"metric {metric!r} not found in the baseline: {exc.reason}")
                else:
                    self.skip(rule, where, metric, f"not in the baseline: {exc.reason}")
                return
            base = None
        numeric_needed = rule.min is not None or rule.max is not None or needs_baseline
        if numeric_needed and not (_is_number(value) and math.isfinite(value)):
            self.problem(self.report_file, rule, where, f"metric {metric!r} is {fmt_value(value)}, not a finite number")
            return
        if needs_baseline and not (_is_number(base) and math.isfinite(base)):
            self.problem(self.baseline_file, rule, where, f"metric {metric!r} is {fmt_value(base)} in the baseline, not a finite number")
            return
        change = _change_pct(value, base) if _is_number(value) and _is_number(base) else None

        def add(kind: str, ok: bool, limit: Any, comparison: str, label: str) -> None:
            verdict = Verdict.passed if ok else Verdict.failed
            self.checks.append(Check(rule.label, where, metric, kind, verdict, label, value, base, limit, comparison, change))

        if rule.min is not None:
            add("min", _within(value, ">=", rule.min), rule.min, ">=", "min")
        if rule.max is not None:
            add("max", _within(value, "<=", rule.max), rule.max, "<=", "max")
        if rule.has_equals:
            add("equals", _same(value, rule.equals), rule.equals, "==", "equals")
        if needs_baseline:
            self._regression(rule, base, value, add)

    @staticmethod
    def _regression(rule: GateRule, base: float, value: float, add: Any) -> None:
        pct = rule.max_regression_pct
        slack_abs = rule.max_regression_abs or 0.0
        slack_pct = abs(base) * pct / 100.0 if pct is not None else 0.0
        # The larger allowance wins: a percentage alone would forbid any change on a zero baseline.
        slack = max(slack_pct, slack_abs)
        lower = rule.direction == Direction.lower_is_better
        limit = base + slack if lower else base - slack
        parts = []
        if pct:
            parts.append(f"{pct:g}%")
        if slack_abs:
            parts.append(f"{slack_abs:g}")
        label = "≤ base" if lower else "≥ base"
        if parts:
            allowance = parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"
            label += f" {'+' if lower else '−'}{allowance}"
        add("regression", _within(value, "<=" if lower else ">=", limit), limit, "<=" if lower else ">=", label)


def evaluate(loaded: LoadedRules, report: Any, baseline: Any, *, report_file: str, baseline_file: str) -> GateResult:
    """Apply every rule; SpecError listing all bad-input problems (missing metrics, non-numbers) if any."""
    kinds = (report_kind(report, report_file), report_kind(baseline, baseline_file))
    check_same_kind(*kinds, report_file, baseline_file)
    evaluator = _Evaluator(report, baseline, report_file, baseline_file)
    for rule, where in zip(loaded.rules.rules, loaded.rule_locations):
        evaluator.apply(rule, where)
    if evaluator.problems:
        raise SpecError(evaluator.problems)
    result = GateResult(report_file, baseline_file, loaded.file, loaded.rules.name, evaluator.checks, kinds)
    if not any(c.verdict != Verdict.skipped for c in result.checks):
        raise SpecError(
            [Problem(Location(report_file), f"no rule in {loaded.file} matched any metric of this report: is it the right kind of report for these rules?")]
        )
    return result


def run_gate(report: str | Path, baseline: str | Path, rules: str | Path | None = None) -> GateResult:
    """Load the three files and evaluate; the whole gate as one call."""
    loaded = load_rules(rules if rules is not None else DEFAULT_RULES)
    report_data = load_json_report(report, "report")
    baseline_data = load_json_report(baseline, "baseline")
    return evaluate(loaded, report_data, baseline_data, report_file=str(report), baseline_file=str(baseline))


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def _row(check: Check) -> list[str]:
    return [
        check.rule,
        check.metric,
        check.check,
        fmt_value(check.value) if check.kind != "missing" else "—",
        fmt_value(check.baseline) if check.baseline is not None else "—",
        check.limit_text,
        f"{check.change_pct:+.1f}%" if check.change_pct is not None else "—",
        check.verdict.value.upper(),
    ]


_HEADERS = ["rule", "metric", "check", "value", "baseline", "limit", "change", "verdict"]
_NUMERIC = [False, False, False, True, True, True, True, False]


def skipped_line(result: GateResult) -> str | None:
    skipped = [c for c in result.checks if c.verdict == Verdict.skipped]
    if not skipped:
        return None
    return "skipped (metric absent, rule not required): " + ", ".join(dict.fromkeys(f"{c.rule}" for c in skipped))


def gate_table(result: GateResult, *, with_rule: bool = True):  # noqa: ANN201 - rich stays out of import cost
    """A rich Table with every evaluated check, grouped by rule (skipped ones are listed under it, not as rows).

    with_rule=False drops the rule column for narrow terminals: the metric path alone still says what failed.
    """
    from rich.table import Table

    styles = {Verdict.passed: "green", Verdict.failed: "bold red"}
    first = 0 if with_rule else 1
    table = Table(title=f"{result.suite}: {result.report} vs {result.baseline}", title_justify="left")
    for header, numeric in zip(_HEADERS[first:], _NUMERIC[first:]):
        table.add_column(header, justify="right" if numeric else "left", overflow="fold")
    previous_rule = None
    for check in result.checks:
        if check.verdict == Verdict.skipped:
            continue
        if previous_rule is not None and check.rule != previous_rule:
            table.add_section()
        previous_rule = check.rule
        cells = _row(check)[first:]
        style = styles[check.verdict]
        cells[-1] = f"[{style}]{cells[-1]}[/{style}]"
        table.add_row(*cells)
    return table


def failure_lines(result: GateResult) -> list[str]:
    return [c.describe() for c in result.failed]


def gate_junit_xml(result: GateResult) -> str:
    """JUnit XML: one testcase per check; failures carry value, baseline and limit in message and text."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="streamtune gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=result.suite,
        tests=str(len(result.checks)),
        failures=str(result.count(Verdict.failed)),
        errors="0",
        skipped=str(result.count(Verdict.skipped)),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("report", result.report), ("baseline", result.baseline), ("rules", result.rules_file)):
        ET.SubElement(properties, "property", name=name, value=value)
    for check in result.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"streamtune.gate.{check.rule}",
            name=f"{check.metric} [{check.kind}]",
            file=check.rule_location.file,
        )
        if check.rule_location.line is not None:
            case.set("line", str(check.rule_location.line))
        if check.verdict == Verdict.failed:
            failure = ET.SubElement(case, "failure", message=check.describe(), type="regression" if check.kind == "regression" else check.kind)
            failure.text = "\n".join(
                [
                    f"metric: {check.metric}",
                    f"value: {fmt_value(check.value)}",
                    f"baseline: {fmt_value(check.baseline) if check.baseline is not None else '-'}",
                    f"limit: {check.limit_text}",
                    f"rule: {check.rule} ({check.rule_location})",
                ]
            )
        elif check.verdict == Verdict.skipped:
            ET.SubElement(case, "skipped", message=check.note)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"value {fmt_value(check.value)}, limit {check.limit_text}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def gate_markdown(result: GateResult) -> str:
    """A Markdown summary fit for $GITHUB_STEP_SUMMARY: headline, the failures spelled out, then every check."""
    from streamtune_cli.report.markdown import md_cell, md_table

    mark = "✅" if result.passed else "❌"
    lines = [
        f"### {mark} {md_cell(result.suite)}: {result.headline}",
        "",
        f"Report `{result.report}` vs baseline `{result.baseline}` (rules `{result.rules_file}`); {md_cell(result.kind_line)}.",
        "",
    ]
    if result.failed:
        lines += ["**Regressions**", ""]
        lines += [f"- `{c.metric}` = **{fmt_value(c.value)}**, limit {c.limit_text}" + (f" (baseline {fmt_value(c.baseline)})" if c.baseline is not None else "") + f" — rule `{md_cell(c.rule)}`" for c in result.failed]
        lines.append("")
    # Paths hold `*` and `_`, which Markdown would read as emphasis: code spans keep them literal.
    rows = [[f"`{r[0]}`", f"`{r[1]}`", *r[2:]] for r in (_row(c) for c in result.checks if c.verdict != Verdict.skipped)]
    lines.append(md_table(_HEADERS, rows, numeric=_NUMERIC))
    skipped = skipped_line(result)
    if skipped:
        lines += [f"_{md_cell(skipped)}_", ""]
    return "\n".join(lines)


def gate_json(result: GateResult) -> dict[str, Any]:
    return {
        "suite": result.suite,
        "report": result.report,
        "baseline": result.baseline,
        "rules": result.rules_file,
        "passed": result.passed,
        "kind": {
            "report": str(result.kinds[0]) if result.kinds[0].kind else None,
            "baseline": str(result.kinds[1]) if result.kinds[1].kind else None,
        },
        "counts": {v.value: result.count(v) for v in Verdict},
        "checks": [
            {
                "rule": c.rule,
                "rule_location": str(c.rule_location),
                "metric": c.metric,
                "kind": c.kind,
                "verdict": c.verdict.value,
                "value": c.value,
                "baseline": c.baseline,
                "limit": c.limit,
                "comparison": c.comparison,
                "change_pct": c.change_pct,
                "note": c.note,
            }
            for c in result.checks
        ],
    }
