"""streamtune's own gate: committed baselines and rules fit each other, a worse report fails, the script runs."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.gate import run_gate

ROOT = Path(__file__).resolve().parents[2]
GATES = ROOT / "configs" / "gates"
NEXMARK = sorted(p.stem for p in (ROOT / "configs" / "nexmark").glob("*.yaml"))
runner = CliRunner()


def quick_suite_tuners() -> list[str]:
    return yaml.safe_load((ROOT / "configs/bench/quick.yaml").read_text())["tuners"]


def test_every_nexmark_config_has_a_fusion_baseline() -> None:
    assert {"q1", "q2", "q3", "q5", "q8", "q11"} <= set(NEXMARK)
    for query in NEXMARK:
        assert (GATES / f"baseline-fuse-{query}.json").is_file(), query


def test_bench_baseline_passes_its_own_rules_with_a_check_per_tuner() -> None:
    result = run_gate(GATES / "baseline-bench-quick.json", GATES / "baseline-bench-quick.json", GATES / "project-bench.yaml")
    assert result.passed
    metrics = {c.metric for c in result.checks}
    for tuner in quick_suite_tuners():
        assert f"aggregates.{tuner}.reconfigurations_mean" in metrics
        assert f"aggregates.{tuner}.ratio_to_oracle_mean" in metrics
    assert not any(".oracle.reconfigurations" in m or ".oracle.ratio" in m for m in metrics)


@pytest.mark.parametrize("query", NEXMARK)
def test_fuse_baselines_pass_their_own_rules(query: str) -> None:
    baseline = GATES / f"baseline-fuse-{query}.json"
    result = run_gate(baseline, baseline, GATES / "project-fuse.yaml")
    data = json.loads(baseline.read_text())
    assert result.passed
    expected = {f"savings.{k}" for k in data["savings"]} | {"tasks_saved", "joint_tasks", "joint_cpu_us_per_s"}
    assert {c.metric for c in result.checks} == expected


def worsened(path: Path, edit: Any, tmp_path: Path) -> Path:
    data = json.loads(path.read_text())
    edit(data)
    out = tmp_path / f"worse-{path.name}"
    out.write_text(json.dumps(data))
    return out


def test_a_worse_bench_fails_naming_metric_value_and_limit(tmp_path: Path) -> None:
    baseline = GATES / "baseline-bench-quick.json"
    tuner = quick_suite_tuners()[0]
    base_value = json.loads(baseline.read_text())["aggregates"][tuner]["reconfigurations_mean"]
    worse_value = base_value * 1.2 + 1  # well past the 5% allowed

    def edit(data: dict) -> None:
        data["aggregates"][tuner]["reconfigurations_mean"] = worse_value

    report = worsened(baseline, edit, tmp_path)
    result = runner.invoke(app, ["gate", str(report), "-b", str(baseline), "-r", str(GATES / "project-bench.yaml")])
    assert result.exit_code == 1, result.output
    [line] = [ln for ln in result.output.splitlines() if ln.startswith("regression:")]
    limit = base_value * 1.05
    assert f"aggregates.{tuner}.reconfigurations_mean = {worse_value:.6g}" in line
    assert f"limit <= {limit:.6g}" in line


def test_lower_fusion_savings_fail(tmp_path: Path) -> None:
    baseline = GATES / "baseline-fuse-q5.json"
    report = worsened(baseline, lambda d: d["savings"].update(cpu_us_per_s=d["savings"]["cpu_us_per_s"] * 0.99), tmp_path)
    result = runner.invoke(app, ["gate", str(report), "-b", str(baseline), "-r", str(GATES / "project-fuse.yaml")])
    assert result.exit_code == 1
    assert "savings.cpu_us_per_s" in result.output and "FAIL: 1 of 8 checks failed" in result.output


def test_script_rejects_unknown_arguments() -> None:
    result = subprocess.run(["bash", str(ROOT / "scripts/ci_gate.sh"), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.slow
def test_script_passes_on_an_unchanged_tree(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GATE_OUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(summary)}
    before = {p.name: p.read_bytes() for p in GATES.glob("baseline-*.json")}
    result = subprocess.run(["bash", str(ROOT / "scripts/ci_gate.sh")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ci gate: exit 0" in result.stdout
    junit = sorted((tmp_path / "out").glob("gate-*.xml"))
    assert [p.name for p in junit] == sorted(["gate-bench-quick.xml"] + [f"gate-fuse-{q}.xml" for q in NEXMARK])
    for path in junit:
        suite = ET.parse(path).getroot().find("testsuite")
        assert suite.get("failures") == "0" and int(suite.get("tests")) > 0
    assert summary.read_text().count("### ✅") == len(junit)
    assert {p.name: p.read_bytes() for p in GATES.glob("baseline-*.json")} == before  # never updated by itself
