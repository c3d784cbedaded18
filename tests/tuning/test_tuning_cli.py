"""`streamtune tune` and `streamtune simulate`: output, JSON, reports, exit codes and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.executors.base import Trace

ROOT = Path(__file__).resolve().parents[2]
CHAIN = str(ROOT / "configs/synthetic/linear_chain.yaml")
Q5 = str(ROOT / "configs/nexmark/q5.yaml")
runner = CliRunner()


def test_tune_prints_summary_table() -> None:
    result = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    for text in ("operator", "initial", "final", "oracle", "stage10", "reconfigurations", "target met", "stop: converged"):
        assert text in result.output


def test_tune_json_and_report(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tune", CHAIN, "--tuner", "autoscaler", "--json", "--report", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["tuner"] == "autoscaler" and data["meta"]["target_met"] is True
    assert {row["operator"] for row in data["operators"]} == {f"stage{i:02d}" for i in range(1, 11)} | {"src", "sink"}
    trace = Trace.model_validate_json((tmp_path / "out" / "trace.json").read_text())
    assert trace.meta["reconfigurations"] == data["meta"]["reconfigurations"]
    assert str(tmp_path / "out" / "trace.json") in data["report_files"]
    try:
        import streamtune_cli.report.trace_report  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "report.html").exists()


def test_tune_dry_run_prints_one_recommendation() -> None:
    result = runner.invoke(app, ["tune", CHAIN, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)["meta"]
    assert meta["steps"] == 1 and meta["reconfigurations"] == 0 and meta["stop_reason"] == "dry_run"
    table = runner.invoke(app, ["tune", CHAIN, "--dry-run"])
    assert table.exit_code == 0 and "recommended" in table.output and "dry run" in table.output


def test_tune_rate_and_bounds() -> None:
    result = runner.invoke(app, ["tune", CHAIN, "--rate", "5000000", "--max-parallelism", "4", "--max-steps", "3", "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)["meta"]
    assert max(meta["final_parallelism"].values()) <= 4 and not meta["target_met"]
    assert meta["final_target_rate_rps"] == 5_000_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "local"], "executor 'local' is not available yet"),
        (["--executor", "flink"], "executor 'flink' is not available yet"),
        (["--executor", "k8s"], "unknown executor 'k8s'"),
        (["--tuner", "magic"], "unknown tuner 'magic'"),
        (["--rate", "0"], "--rate must be > 0"),
        (["--max-change", "0.5"], "max_change_factor must be >= 1"),
    ],
)
def test_tune_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["tune", CHAIN, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_tune_missing_or_invalid_spec_exits_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["tune", str(tmp_path / "nope.yaml")]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nworkload: {rate_rps: -1}\noperators: []\n")
    result = runner.invoke(app, ["tune", str(bad)])
    assert result.exit_code == 2 and f"{bad}:2" in result.output


def test_simulate_names_the_bottleneck_and_the_oracle() -> None:
    result = runner.invoke(app, ["simulate", Q5, "--parallelism", "bids_per_auction=5", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "bottleneck: bids_per_auction" in result.output and "oracle: 13 instances" in result.output
    data = json.loads(runner.invoke(app, ["simulate", Q5, "-p", "bids_per_auction=5", "--json", "--noise", "0"]).output)
    assert data["bottlenecks"] == ["bids_per_auction"] and data["parallelism"]["bids_per_auction"] == 5
    assert data["observation"]["achieved_rate_rps"] < data["observation"]["target_rate_rps"]
    ok = json.loads(runner.invoke(app, ["simulate", Q5, "--json", "-p", ",".join(f"{k}={v}" for k, v in data["oracle"]["parallelism"].items())]).output)
    assert ok["bottlenecks"] == [] and ok["observation"]["achieved_rate_rps"] == ok["observation"]["target_rate_rps"]


@pytest.mark.parametrize(
    ("parallelism", "message"),
    [
        ("bids_per_auction", "expected op=N"),
        ("bids_per_auction=many", "not an integer"),
        ("nosuch=3", "unknown operator 'nosuch'"),
        ("bids_per_auction=999", "exceeds its max_parallelism 128"),
    ],
)
def test_simulate_bad_parallelism_exits_2(parallelism: str, message: str) -> None:
    result = runner.invoke(app, ["simulate", Q5, "--parallelism", parallelism])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_tune_with_ds2_imports_no_torch_nor_sklearn() -> None:
    probe = (
        "from streamtune_cli.cli.app import main\n"
        f"try:\n    main(['tune', {CHAIN!r}, '--tuner', 'ds2', '--json'])\nexcept SystemExit:\n    pass\n"
        "import sys\nprint('LOADED=' + ','.join(m for m in ('torch', 'torch_geometric', 'polars', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "LOADED="
