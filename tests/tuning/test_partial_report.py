"""A tune session that fails part-way leaves its own windows behind, never an older run's report as if current."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.errors import ExecutorError
from streamtune_cli.executors.sim import SimExecutor
from streamtune_cli.report.trace_report import read_report_set

ROOT = Path(__file__).resolve().parents[2]
JOB = str(ROOT / "configs" / "synthetic" / "linear_chain.yaml")
runner = CliRunner()


def test_a_failed_session_replaces_the_folders_report_with_its_partial_one(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report"
    good = runner.invoke(app, ["tune", JOB, "--tuner", "ds2", "--out", str(out)])
    assert good.exit_code in (0, 1), good.output
    assert json.loads(read_report_set(out)["trace.json"]).get("meta", {}).get("partial") is not True

    real = SimExecutor.observe
    calls = {"n": 0}

    def failing(self):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise ExecutorError("sim", "the cluster went away")
        return real(self)

    monkeypatch.setattr(SimExecutor, "observe", failing)
    failed = runner.invoke(app, ["tune", JOB, "--tuner", "ds2", "--out", str(out)])
    assert failed.exit_code == 4, failed.output
    assert "the cluster went away" in failed.output
    partial = json.loads((out / "partial-trace.json").read_text())
    assert partial["meta"]["partial"] is True and len(partial["steps"]) == 2
    # The folder's report set is the failed session's now, and says so at the top of the page.
    files = read_report_set(out)
    trace = json.loads(files["trace.json"])
    assert trace["meta"]["partial"] is True and len(trace["steps"]) == 2
    assert b"FAILED" in files["report.html"]
