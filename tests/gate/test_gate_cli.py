"""`streamtune gate` end to end: exit codes, the table, JUnit XML, the Markdown summary, --update-baseline."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app

runner = CliRunner()

RULES = """\
name: bench gate
rules:
  - name: reconfigurations
    metric: tuners.*.mean_reconfigurations
    direction: lower_is_better
    max_regression_pct: 10
  - name: footprint
    metric: tuners.*.mean_final_over_oracle
    direction: lower_is_better
    max_regression_pct: 5
    max: 3
  - name: converged
    metric: all_converged
    equals: true
"""

BASELINE: dict[str, Any] = {
    "tuners": {
        "ds2": {"mean_reconfigurations": 2.0, "mean_final_over_oracle": 1.2},
        "autoscaler": {"mean_reconfigurations": 4.0, "mean_final_over_oracle": 1.5},
    },
    "all_converged": True,
}


def worse() -> dict[str, Any]:
    report = json.loads(json.dumps(BASELINE))
    report["tuners"]["ds2"]["mean_reconfigurations"] = 3.0  # +50% against a 10% tolerance: limit 2.2
    return report


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"rules": tmp_path / "rules.yaml", "base": tmp_path / "base.json", "same": tmp_path / "same.json", "worse": tmp_path / "worse.json"}
    paths["rules"].write_text(RULES)
    paths["base"].write_text(json.dumps(BASELINE, indent=2))
    paths["same"].write_text(json.dumps(BASELINE))
    paths["worse"].write_text(json.dumps(worse()))
    return paths


def gate(*args: Any) -> Any:
    return runner.invoke(app, ["gate", *map(str, args)])


def test_identical_report_passes(files: dict[str, Path]) -> None:
    result = gate(files["same"], "--baseline", files["base"], "--rules", files["rules"])
    assert result.exit_code == 0, result.output
    assert "PASS: 7 checks passed" in result.output  # 2 tuners x (1 + 2) + 1
    for metric in ("tuners.ds2.mean_reconfigurations", "tuners.autoscaler.mean_final_over_oracle", "all_converged"):
        assert metric in result.output


def test_worse_report_fails_naming_metric_value_and_limit(files: dict[str, Path]) -> None:
    result = gate(files["worse"], "-b", files["base"], "-r", files["rules"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("regression:")]
    assert len(lines) == 1
    # 2.0 * 1.10 = 2.2 is the limit; the line must carry the metric, the value 3 and that limit.
    assert "tuners.ds2.mean_reconfigurations = 3" in lines[0]
    assert "limit <= 2.2" in lines[0] and "baseline 2" in lines[0] and "+50.0%" in lines[0]
    assert "FAIL: 1 of 7 checks failed" in result.output


def test_junit_xml_parses_with_one_testcase_per_check(files: dict[str, Path], tmp_path: Path) -> None:
    junit = tmp_path / "out" / "gate.xml"
    result = gate(files["worse"], "-b", files["base"], "-r", files["rules"], "--junit", junit)
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("name") == "bench gate"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "1", "0")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert names == {
        ("streamtune.gate.reconfigurations", "tuners.ds2.mean_reconfigurations [regression]"),
        ("streamtune.gate.reconfigurations", "tuners.autoscaler.mean_reconfigurations [regression]"),
        ("streamtune.gate.footprint", "tuners.ds2.mean_final_over_oracle [regression]"),
        ("streamtune.gate.footprint", "tuners.ds2.mean_final_over_oracle [max]"),
        ("streamtune.gate.footprint", "tuners.autoscaler.mean_final_over_oracle [regression]"),
        ("streamtune.gate.footprint", "tuners.autoscaler.mean_final_over_oracle [max]"),
        ("streamtune.gate.converged", "all_converged [equals]"),
    }
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["tuners.ds2.mean_reconfigurations [regression]"]
    failure = failed[0].find("failure")
    assert "= 3" in failure.get("message") and "2.2" in failure.get("message")
    body = dict(line.split(": ", 1) for line in failure.text.splitlines())
    assert body["value"] == "3" and body["baseline"] == "2" and body["limit"] == "<= 2.2"
    assert failed[0].get("line") == "3"  # the rule's line in rules.yaml, where a reader goes to change it
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["baseline"] == str(files["base"])


def test_markdown_summary_for_a_github_step(files: dict[str, Path], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = gate(files["worse"], "-b", files["base"], "-r", files["rules"], "--summary", summary)
    assert result.exit_code == 1
    text = summary.read_text()
    assert text.startswith("### ❌ bench gate: FAIL: 1 of 7 checks failed")
    assert "- `tuners.ds2.mean_reconfigurations` = **3**, limit <= 2.2 (baseline 2)" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 7  # header, alignment row, one row per check
    assert all(line.count("|") == 9 for line in table)  # 8 columns, no cell broke the table
    passed = tmp_path / "pass.md"
    gate(files["same"], "-b", files["base"], "-r", files["rules"], "--summary", passed)
    assert passed.read_text().startswith("### ✅ bench gate: PASS")


def test_json_output(files: dict[str, Path]) -> None:
    result = gate(files["worse"], "-b", files["base"], "-r", files["rules"], "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["passed"] is False and data["counts"] == {"pass": 6, "fail": 1, "skip": 0}
    [failed] = [c for c in data["checks"] if c["verdict"] == "fail"]
    assert failed["metric"] == "tuners.ds2.mean_reconfigurations" and failed["limit"] == pytest.approx(2.2)


EXIT_CASES = [
    # (name, how to break the files, expected exit code, fragment of the message)
    ("all pass", lambda f: None, 0, "PASS"),
    ("regression", lambda f: f["same"].write_text(f["worse"].read_text()), 1, "FAIL"),
    ("missing report", lambda f: f["same"].unlink(), 2, "report file does not exist"),
    ("missing baseline", lambda f: f["base"].unlink(), 2, "baseline file does not exist"),
    ("report not json", lambda f: f["same"].write_text('{\n  "tuners": {,\n}'), 2, "same.json:2:14: invalid JSON"),
    ("report nested too deeply", lambda f: f["same"].write_text("[" * 100_000), 2, "report file is nested too deeply"),
    ("report is a folder", lambda f: (f["same"].unlink(), f["same"].mkdir()), 2, "is a directory"),
    ("missing metric", lambda f: f["same"].write_text('{"tuners": {}, "all_converged": true}'), 2, "nothing matches '*' under 'tuners'"),
    ("rules do not parse", lambda f: f["rules"].write_text(RULES.replace("max: 3", "max: [3")), 2, "rules.yaml:12:9: YAML syntax error"),
    ("rules invalid", lambda f: f["rules"].write_text(RULES.replace("direction: lower_is_better\n    max_regression_pct: 5", "max_regression_pct: 5")), 2, "rules.yaml:7:5: a regression tolerance needs direction"),
    ("missing rules", lambda f: f["rules"].unlink(), 2, "rules.yaml: no such file"),
]


@pytest.mark.parametrize("name, breaker, code, fragment", EXIT_CASES, ids=[c[0] for c in EXIT_CASES])
def test_exit_codes(files: dict[str, Path], name: str, breaker: Any, code: int, fragment: str) -> None:
    breaker(files)
    result = gate(files["same"], "-b", files["base"], "-r", files["rules"])
    assert result.exit_code == code, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_update_baseline_writes_the_report_atomically_and_says_so(files: dict[str, Path], tmp_path: Path) -> None:
    original = files["worse"].read_text()
    result = gate(files["worse"], "-b", files["base"], "-r", files["rules"], "--update-baseline")
    assert result.exit_code == 0, result.output
    assert f"baseline updated: {files['base']}" in result.output
    assert "against the old baseline: FAIL" in result.output  # the reviewer sees what is being accepted
    assert files["base"].read_text() == original
    assert not [p for p in files["base"].parent.iterdir() if p.name.startswith(".base.json.")]  # no temp left
    # now the worse report is the baseline, so the same report passes
    assert gate(files["worse"], "-b", files["base"], "-r", files["rules"]).exit_code == 0


def test_update_baseline_creates_a_first_baseline(files: dict[str, Path], tmp_path: Path) -> None:
    new = tmp_path / "baselines" / "first.json"
    result = gate(files["same"], "-b", new, "-r", files["rules"], "--update-baseline")
    assert result.exit_code == 0 and new.read_text() == files["same"].read_text()


def test_update_baseline_refuses_a_broken_report(files: dict[str, Path]) -> None:
    before = files["base"].read_text()
    files["same"].write_text("{oops")
    result = gate(files["same"], "-b", files["base"], "-r", files["rules"], "--update-baseline")
    assert result.exit_code == 2 and "invalid JSON" in result.output
    assert files["base"].read_text() == before


def test_gate_never_updates_the_baseline_by_itself(files: dict[str, Path]) -> None:
    before = files["base"].read_text()
    assert gate(files["worse"], "-b", files["base"], "-r", files["rules"]).exit_code == 1
    assert files["base"].read_text() == before


def test_table_fits_a_ci_log(files: dict[str, Path]) -> None:
    """Outside a terminal the table is laid out for a wide log, not folded at 80 columns."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = runner.invoke(app, ["gate", str(files["same"]), "-b", str(files["base"]), "-r", str(files["rules"])], env=env)
    assert any("tuners.autoscaler.mean_final_over_oracle" in line for line in result.output.splitlines())


def test_default_rules_are_used_without_rules_option(tmp_path: Path) -> None:
    """The shipped default.yaml gates a tune summary (the bench rules are skipped as not applicable)."""
    summary = {"reconfigurations": 2, "final_total_parallelism": 12, "target_met": True}
    base, worse_report = tmp_path / "base.json", tmp_path / "tune.json"
    base.write_text(json.dumps(summary))
    worse_report.write_text(json.dumps({**summary, "final_total_parallelism": 14}))  # +16.7% > 10%
    result = gate(worse_report, "-b", base)
    assert result.exit_code == 1, result.output
    assert "final_total_parallelism = 14, limit <= 13.2" in result.output
    assert "skipped (metric absent, rule not required): " in result.output and "bench reconfigurations" in result.output


def test_gate_imports_no_heavy_library(files: dict[str, Path]) -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom streamtune_cli.cli.app import main\n"
        f"try:\n    main(['gate', {str(files['same'])!r}, '-b', {str(files['base'])!r}, '-r', {str(files['rules'])!r}])\n"
        "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "print('HEAVY=' + ','.join(m for m in ('torch', 'torch_geometric', 'polars', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_update_baseline_keeps_an_ordinary_file_mode(files: dict[str, Path]) -> None:
    files["base"].chmod(0o640)
    assert gate(files["worse"], "-b", files["base"], "-r", files["rules"], "--update-baseline").exit_code == 0
    assert files["base"].stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("with_rule", [True, False])
def test_table_rendering(files: dict[str, Path], with_rule: bool) -> None:
    import io

    from rich.console import Console

    from streamtune_cli.gate import gate_table, run_gate

    result = run_gate(files["worse"], files["base"], files["rules"])
    out = io.StringIO()
    Console(width=200, file=out, color_system=None).print(gate_table(result, with_rule=with_rule))
    text = out.getvalue()
    header = next(line for line in text.splitlines() if "metric" in line)
    cells = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert cells == (["rule"] if with_rule else []) + ["metric", "check", "value", "baseline", "limit", "change", "verdict"]
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == len(result.checks) == 7
    [failed] = [r for r in rows if "FAIL" in r]
    assert "tuners.ds2.mean_reconfigurations" in failed and "<= 2.2" in failed and "+50.0%" in failed
    assert (failed.split("│")[1].strip() == "reconfigurations") is with_rule


ROOT = Path(__file__).resolve().parents[2]
BENCH_BASELINE = ROOT / "configs" / "gates" / "baseline-bench-quick.json"


def bench_variant(tmp_path: Path, name: str, edit: Any) -> Path:
    data = json.loads(BENCH_BASELINE.read_text())
    edit(data["aggregates"])
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_default_rules_catch_a_metric_lost_by_one_tuner(tmp_path: Path) -> None:
    """The review repro: ds2's ratio deleted and conttune's raised to 9.9 used to pass the default rules."""

    def edit(agg: dict) -> None:
        del agg["ds2"]["ratio_to_oracle_mean"]
        agg["conttune"]["ratio_to_oracle_mean"] = 9.9

    report = bench_variant(tmp_path, "partial.json", edit)
    result = gate(report, "-b", BENCH_BASELINE)
    assert result.exit_code == 2, result.output
    assert "'aggregates.ds2.ratio_to_oracle_mean' is in the baseline but missing from the report" in result.output
    # Had the baseline lacked ds2's ratio too, conttune's regression is still judged on its own branch.
    baseline = bench_variant(tmp_path, "base.json", lambda agg: agg["ds2"].pop("ratio_to_oracle_mean"))
    result = gate(report, "-b", baseline)
    assert result.exit_code == 1, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("regression:")]
    assert "aggregates.conttune.ratio_to_oracle_mean = 9.9" in line


def test_default_rules_catch_a_lost_tuner(tmp_path: Path) -> None:
    report = bench_variant(tmp_path, "lost.json", lambda agg: agg.pop("ds2"))
    result = gate(report, "-b", BENCH_BASELINE)
    assert result.exit_code == 2, result.output
    assert "'aggregates.ds2.reconfigurations_mean' is in the baseline but missing from the report" in result.output


def test_default_rules_gate_a_fuse_report(tmp_path: Path) -> None:
    """default.yaml covers fuse reports too: savings and tasks saved must not drop."""
    fused = tmp_path / "fuse.json"
    made = runner.invoke(app, ["fuse", str(ROOT / "configs" / "nexmark" / "q5.yaml"), "--json", str(fused)])
    assert made.exit_code == 0, made.output
    same = gate(fused, "-b", fused, "--json")
    assert same.exit_code == 0, same.output
    data = json.loads(fused.read_text())
    checked = {c["metric"] for c in json.loads(same.output)["checks"] if c["verdict"] == "pass"}
    assert checked == {f"savings.{k}" for k in data["savings"]} | {"tasks_saved"}
    worse = json.loads(fused.read_text())
    worse["tasks_saved"] -= 1
    worse["savings"]["cpu_us_per_s"] *= 0.99
    worse_file = tmp_path / "worse.json"
    worse_file.write_text(json.dumps(worse))
    result = gate(worse_file, "-b", fused, "--json")
    assert result.exit_code == 1, result.output
    failed = {c["metric"] for c in json.loads(result.output)["checks"] if c["verdict"] == "fail"}
    assert failed == {"tasks_saved", "savings.cpu_us_per_s"}
