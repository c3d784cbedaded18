"""`streamtune fuse --measure`: the job really runs unfused and fused on the local executor.

What is asserted does not depend on the machine's speed: a fused chain serializes nothing, an unfused one
serializes every record it passes on (Arrow IPC, at least the bid's 100 bytes), and crossing two process
boundaries costs CPU per record that the fused run does not pay (CPU time, not wall time).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streamtune_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
Q1 = str(ROOT / "configs" / "nexmark" / "q1.yaml")


def test_measure_runs_both_plans_and_reports_bytes_and_cpu(tmp_path: Path) -> None:
    out = tmp_path / "measure.json"
    result = CliRunner().invoke(
        app, ["fuse", Q1, "--measure", "--measure-window", "1", "--measure-cores", "1", "--measure-json", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema"] == "streamtune.fusion-measure/2" and data["cores"] == 1
    unfused, fused = data["runs"]
    assert (unfused["fused"], fused["fused"]) == (False, True)
    assert fused["processes"] < unfused["processes"]
    assert unfused["throughput_rps"] > 0 and fused["throughput_rps"] > 0
    # q1 at the spec's parallelism is one chain (source -> map -> sink): nothing crosses a process.
    assert fused["serialized_bytes_per_record"] == 0.0
    assert unfused["serialized_bytes_per_record"] >= 100.0
    assert fused["cpu_us_per_record"] < unfused["cpu_us_per_record"]
    # Pinned to one CPU, the job cannot use more than one core's time.
    assert unfused["cores_used"] <= 1.05 and fused["cores_used"] <= 1.05
    assert "fused / unfused throughput: measured x" in result.output


def test_measure_options_are_checked_before_anything_runs() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["fuse", Q1, "--measure", "--measure-window", "0"])
    assert result.exit_code == 2 and "--measure-window must be positive" in result.output
    result = runner.invoke(app, ["fuse", Q1, "--measure", "--measure-cores", "100000", "--measure-window", "1"])
    assert result.exit_code == 2, result.output
    assert "--measure-cores: cores must be between 1 and the" in result.output
    assert "Traceback" not in result.output
