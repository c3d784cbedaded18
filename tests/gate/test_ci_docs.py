"""docs/ci.md's GitHub Actions example is run here, command for command, against the committed baselines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ci.md"


def workflow() -> dict[str, Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    [block] = [b for b in blocks if "\njobs:" in b]
    return yaml.safe_load(block)


def runnable_steps(job: str) -> list[str]:
    """The job's shell steps that involve streamtune's output; installing is the environment's business."""
    steps = workflow()["jobs"][job]["steps"]
    return [s["run"] for s in steps if "run" in s and "pip install" not in s["run"]]


def run_job(job: str, tmp_path: Path) -> Path:
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    summary = tmp_path / "step-summary.md"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("COLUMNS", None)
    for script in runnable_steps(job):
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"step {script!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return summary


def test_workflow_is_well_formed() -> None:
    flow = workflow()
    assert set(flow["jobs"]) == {"fusion-gate", "bench-gate"}
    for job in flow["jobs"].values():
        commands = " ".join(s.get("run", "") for s in job["steps"])
        assert "streamtune gate" in commands and "--junit" in commands and "--summary" in commands
        assert "--update-baseline" not in commands  # CI never accepts new numbers by itself
        # every file a gate reads from the repository is committed
        for path in re.findall(r"configs/\S+", commands):
            assert (ROOT / path).is_file(), path


def check_outputs(tmp_path: Path, summary: Path, junit: str) -> None:
    suite = ET.parse(tmp_path / junit).getroot().find("testsuite")
    assert int(suite.get("tests")) > 0 and suite.get("failures") == "0"
    assert summary.read_text(encoding="utf-8").startswith("### ✅ ")


def test_fusion_job_runs_and_passes(tmp_path: Path) -> None:
    summary = run_job("fusion-gate", tmp_path)
    check_outputs(tmp_path, summary, "gate-fuse-q5.xml")


@pytest.mark.slow
def test_bench_job_runs_and_passes(tmp_path: Path) -> None:
    summary = run_job("bench-gate", tmp_path)
    check_outputs(tmp_path, summary, "gate-bench.xml")
