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


def flat(text: str) -> str:
    """Output with rich's box borders and line wrapping undone, for substring checks."""
    return " ".join(text.replace("│", " ").split())


def test_tune_prints_summary_table() -> None:
    result = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    for text in ("operator", "initial", "final", "oracle", "stage10", "reconfigurations", "target met", "stop: converged"):
        assert text in result.output


def test_tune_json_and_report(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tune", CHAIN, "--tuner", "autoscaler", "--json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the files written are listed on stderr, one line each
    assert data["schema"] == "streamtune.tune-summary/1"
    assert f"wrote {tmp_path / 'out' / 'trace.json'}" in result.stderr
    assert data["tuner"] == "autoscaler" and data["meta"]["target_met"] is True
    assert {row["operator"] for row in data["operators"]} == {f"stage{i:02d}" for i in range(1, 11)} | {"src", "sink"}
    trace = Trace.model_validate_json((tmp_path / "out" / "trace.json").read_text())
    assert trace.meta["reconfigurations"] == data["meta"]["reconfigurations"]
    assert str(tmp_path / "out" / "trace.json") in data["report_files"]
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "report.html").exists()


def test_tune_dry_run_prints_one_recommendation() -> None:
    result = runner.invoke(app, ["tune", CHAIN, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)["meta"]
    assert meta["steps"] == 1 and meta["reconfigurations"] == 0 and meta["stop_reason"] == "dry_run"
    table = runner.invoke(app, ["tune", CHAIN, "--dry-run"])
    assert table.exit_code == 0 and "recommended" in table.output and "dry run" in table.output


def test_tune_rate_and_bounds() -> None:
    # The cap holds the job below what 5M rec/s needs: it ran, it does not keep up, so it exits 1 (CI fails).
    result = runner.invoke(app, ["tune", CHAIN, "--rate", "5000000", "--parallelism-cap", "4", "--max-steps", "3", "--json"])
    assert result.exit_code == 1, result.output
    meta = json.loads(result.stdout)["meta"]
    assert max(meta["final_parallelism"].values()) <= 4 and not meta["target_met"]
    assert meta["final_target_rate_rps"] == 5_000_000
    assert "does not keep up at the peak target (5,000,000 rec/s)" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "flink"], "--executor flink needs --rest URL and --job ID"),
        (["--executor", "flink", "--rest", "http://127.0.0.1:1"], "--executor flink needs --rest URL and --job ID"),
        (["--executor", "k8s"], "unknown executor 'k8s' (choose from sim, local, flink)"),
        (["--tuner", "magic"], "unknown tuner 'magic' (choose from ds2, conttune, autoscaler, streamtune)"),
        (["--rate", "0"], "--rate must be positive and finite"),
        (["--rate", "inf"], "--rate must be positive and finite"),
        (["--rate", "nan"], "--rate must be positive and finite"),
        (["--rate", "-1e9"], "--rate must be positive and finite"),
        (["--max-change", "0.5"], "max_change_factor must be a finite number >= 1"),
        (["--max-change", "inf"], "max_change_factor must be a finite number >= 1"),
        (["--max-change", "nan"], "max_change_factor must be a finite number >= 1"),
        (["--noise", "inf"], "--noise"),
        (["--noise", "nan"], "--noise"),
        (["--noise", "0.6"], "--noise"),
        (["--seed", "-1"], "--seed"),
        (["--max-parallelism", "32769"], "--max-parallelism"),
        (["--max-parallelism", "0"], "--max-parallelism"),
        (["--parallelism-cap", "32769"], "--parallelism-cap"),
        (["--parallelism-cap", "4", "--max-parallelism", "4"], "--max-parallelism is the old name of --parallelism-cap"),
        (["--out", "a", "--report", "b"], "--report is the old name of --out"),
        (["--out", "-"], "--out names a folder (several files go there), so it cannot be '-'"),
        (["--tuner", "ds2", "--tuner-option", "job.autoscaler.utilization.target=0.5"], "valid keys: overprovision"),
        (["--tuner", "ds2", "--tuner-option", "overprovision"], "expects KEY=VALUE"),
        (["--tuner", "ds2", "--tuner-option", "overprovision=lots"], "option 'overprovision'"),
        (["--tuner", "ds2", "--models", "x"], "--models is an option of the streamtune tuner"),
    ],
)
def test_tune_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["tune", CHAIN, *args])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-1"], "--seed"),
        (["--rate", "nan"], "--rate must be positive and finite"),
        (["--rate", "inf"], "--rate must be positive and finite"),
        (["--noise", "nan"], "--noise"),
    ],
)
def test_simulate_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", Q5, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "internal error" not in result.output


def test_max_parallelism_never_lifts_an_operator_above_its_own() -> None:
    # --max-parallelism 1000 above linear_chain's max_parallelism 128: every operator stays <= 128, in the
    # deployed parallelism and in the oracle (at 2e7 rec/s stage08 alone would want several hundred).
    result = runner.invoke(
        app, ["tune", CHAIN, "--rate", "2e7", "--max-parallelism", "1000", "--max-steps", "4", "--json", "--noise", "0"]
    )
    assert result.exit_code == 1, result.output  # the old name still works; the job cannot keep up: exit 1
    meta = json.loads(result.stdout)["meta"]
    for step_map in (meta["final_parallelism"], meta["recommended_parallelism"], meta["oracle"]["parallelism"]):
        assert max(step_map.values()) <= 128
    assert not meta["oracle"]["feasible"]


def test_rate_is_the_base_rate_the_schedule_multiplies() -> None:
    # q8's square wave starts in its low half (x0.5): --rate 200000 asks for 100,000 in the first window,
    # and the summary says both.
    result = runner.invoke(app, ["tune", str(ROOT / "configs/nexmark/q8.yaml"), "--rate", "200000", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "base 200,000 rec/s" in result.output and "last window's target 100,000 rec/s" in result.output
    assert "peak target 200,000 rec/s" in result.output
    help_text = runner.invoke(app, ["tune", "--help"]).output
    assert "Base source rate in records/s" in " ".join(help_text.replace("│", " ").split())


def test_tune_missing_or_invalid_spec_exits_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["tune", str(tmp_path / "nope.yaml")]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nworkload: {rate_rps: -1}\noperators: []\n")
    result = runner.invoke(app, ["tune", str(bad)])
    assert result.exit_code == 2 and f"{bad}:2" in result.output


def test_simulate_names_the_bottleneck_and_the_oracle() -> None:
    result = runner.invoke(app, ["simulate", Q5, "--parallelism", "bids_per_auction=5", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "bottleneck: bids_per_auction" in result.output and "oracle at this window's target: 13 instances" in result.output
    assert "schedule's peak" not in result.output  # q5 has a constant rate: one oracle
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


def test_simulate_shows_the_window_and_the_peak_oracle_on_a_varying_workload() -> None:
    q8 = str(ROOT / "configs/nexmark/q8.yaml")
    data = json.loads(runner.invoke(app, ["simulate", q8, "--json", "--noise", "0", "--rate", "400000"]).output)
    assert data["base_rate_rps"] == 400_000 and data["peak_target_rate_rps"] == 400_000
    assert data["observation"]["target_rate_rps"] == 200_000  # the low half of the square wave
    assert data["oracle"]["rate_rps"] == 200_000 and data["peak_oracle"]["rate_rps"] == 400_000
    assert data["peak_oracle"]["total"] > data["oracle"]["total"]
    text = runner.invoke(app, ["simulate", q8]).output
    assert "x0.5 of the base 200,000 rec/s" in " ".join(text.split())
    assert "oracle at the schedule's peak (200,000 rec/s" in " ".join(text.split())
