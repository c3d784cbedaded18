"""`streamtune fuse` end to end: tables, --out specs that validate/re-fuse, JSON and Markdown reports, clean
errors, and no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.spec import load_spec, spec_to_data

ROOT = Path(__file__).resolve().parents[2]
Q5 = str(ROOT / "configs" / "nexmark" / "q5.yaml")
runner = CliRunner()


def test_fuse_prints_the_plan_tables() -> None:
    result = runner.invoke(app, ["fuse", Q5])
    assert result.exit_code == 0, result.output
    for expected in ("fusion plan: nexmark-q5", "stages (tasks)", "edges"):
        assert expected in result.output


def test_flink_mode_and_outputs(tmp_path: Path) -> None:
    out, report, markdown = tmp_path / "fused.yaml", tmp_path / "fuse.json", tmp_path / "fuse.md"
    result = runner.invoke(
        app, ["fuse", Q5, "--mode", "flink", "--out", str(out), "--json", str(report), "--markdown", str(markdown)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["mode"] == "flink" and data["chains"] == 2 and data["fused_edges"] == 2 and data["boundaries"] == 2
    assert data["serialized_bytes_per_s"] > 0
    assert {s["name"] for s in data["stages"]} == {
        "Source: bids -> auction_time",
        "bids_per_auction",
        "max_per_window -> Sink: sink",
    }
    assert "```mermaid" in markdown.read_text()
    validated = runner.invoke(app, ["validate", str(out)])
    assert validated.exit_code == 0, validated.output
    # Fusing the fused spec again writes the same spec.
    again = tmp_path / "again.yaml"
    assert runner.invoke(app, ["fuse", str(out), "--mode", "flink", "--out", str(again)]).exit_code == 0
    assert spec_to_data(load_spec(again)) == spec_to_data(load_spec(out))


def test_json_to_stdout_is_only_json() -> None:
    result = runner.invoke(app, ["fuse", Q5, "--json", "-"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["schema"] == "streamtune.fusion/2"
    for key in ("chains", "fused_edges", "boundaries", "serialized_bytes_per_s", "cpu_us_per_s", "hops_per_s", "latency_ms"):
        assert isinstance(data[key], (int, float))


def test_rate_option_changes_the_capacity_verdict() -> None:
    q1 = str(ROOT / "configs" / "nexmark" / "q1.yaml")
    busy = json.loads(runner.invoke(app, ["fuse", q1, "--json", "-"]).output)
    quiet = json.loads(runner.invoke(app, ["fuse", q1, "--json", "-", "--rate", "100000"]).output)
    # At 1e6 rec/s the source (2.02x) holds the job back: `to_euro -> sink` fuses below that load, the source's
    # own chain would not (2.63x); at 1e5 rec/s everything fits one task.
    edges = {(e["from"], e["to"]): e for e in busy["edges"]}
    assert busy["fused_edges"] == 1 and edges[("to_euro", "sink")]["fused"]
    assert edges[("bids", "to_euro")]["reasons"] == ["would exceed capacity: 2.63x, the job's bottleneck is at 2.02x"]
    assert quiet["fused_edges"] == 2
    assert not busy["keeps_up_as_written"] and quiet["keeps_up_as_written"]
    assert busy["joint"]["keeps_up"] and busy["joint_tasks"] == busy["joint"]["tasks"]


def test_every_output_takes_a_dash_for_stdout(tmp_path: Path) -> None:
    for option in ("--markdown", "--out", "--joint-out"):
        result = runner.invoke(app, ["fuse", Q5, option, "-"])
        assert result.exit_code == 0, result.output
        assert not (Path.cwd() / "-").exists()
        assert "fusion plan: nexmark-q5" not in result.output  # the tables give way to the data
    assert runner.invoke(app, ["fuse", Q5, "--markdown", "-"]).output.startswith("# Fusion plan: nexmark-q5")
    assert "name: nexmark-q5" in runner.invoke(app, ["fuse", Q5, "--joint-out", "-"]).output
    both = runner.invoke(app, ["fuse", Q5, "--json", "-", "--markdown", "-"])
    assert both.exit_code == 2 and "both want stdout" in both.output


def test_fuse_prints_the_files_it_writes(tmp_path: Path) -> None:
    paths = [tmp_path / name for name in ("fused.yaml", "joint.yaml", "fuse.json", "fuse.md")]
    options = ["--out", "--joint-out", "--json", "--markdown"]
    args = [part for option, path in zip(options, paths) for part in (option, str(path))]
    result = runner.invoke(app, ["fuse", Q5, *args])
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("wrote ")] == [f"wrote {p}" for p in paths]
    # The joint spec validates and Flink builds the joint plan's chains from it.
    data = json.loads(paths[2].read_text())
    joint = load_spec(paths[1])
    assert {op.id: op.parallelism for op in joint.operators} == data["joint"]["parallelism"]


def test_help_fits_80_columns_without_cut_option_names() -> None:
    env = {"COLUMNS": "80"}
    result = runner.invoke(app, ["fuse", "--help"], env=env, terminal_width=80)
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    for option in ("--strict-max-parallelism", "--serde-us-per-record", "--joint-out", "--measure-cores"):
        assert option in result.output, option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fuse", "missing.yaml"], "missing.yaml"),
        (["fuse", Q5, "--rate", "-5"], "rate must be positive"),
        (["fuse", Q5, "--rate", "inf"], "rate must be positive and finite"),
        (["fuse", Q5, "--rate", "nan"], "rate must be positive and finite"),
        (["fuse", Q5, "--serde-us-per-byte", "-1"], "cost model values must be >= 0"),
        (["fuse", Q5, "--serde-us-per-byte", "inf"], "cost model values must be >= 0 and finite"),
        (["fuse", Q5, "--hop-latency-ms", "nan"], "cost model values must be >= 0 and finite"),
    ],
)
def test_bad_input_exits_2_without_traceback(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_default_rate_is_the_schedule_peak_also_for_trace_files(tmp_path: Path) -> None:
    # tune sizes for the schedule's peak; fuse must use the same rate, trace files included.
    (tmp_path / "rates.csv").write_text("t_s,factor\n0,1.0\n300,2.5\n600,0.5\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: t\nworkload: {rate_rps: 1000, schedule: {kind: trace, file: rates.csv}}\n"
        "operators:\n  - {id: s, kind: source}\n  - {id: k, kind: sink}\nedges:\n  - {from: s, to: k}\n"
    )
    result = runner.invoke(app, ["fuse", str(spec), "--json", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rate_rps"] == pytest.approx(2500)
    q8 = runner.invoke(app, ["fuse", str(ROOT / "configs" / "nexmark" / "q8.yaml"), "--json", "-", "--no-sql"])
    assert json.loads(q8.output)["rate_rps"] == pytest.approx(200_000)  # the square wave's high half


def test_bad_spec_names_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nworkload: {rate_rps: 10}\noperators:\n  - {id: a, kind: nope}\n")
    result = runner.invoke(app, ["fuse", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4:" in result.output


def _imported(args: list[str]) -> set[str]:
    code = (
        "import sys\nfrom streamtune_cli.cli.app import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('HEAVY=' + ','.join(m for m in ('torch', 'torch_geometric', 'polars') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    line = [x for x in result.stdout.splitlines() if x.startswith("HEAVY=")][-1]
    return {m for m in line.removeprefix("HEAVY=").split(",") if m}


def test_fuse_imports_no_torch_and_polars_only_to_parse_sql() -> None:
    assert _imported(["fuse", "--json", "-", "--no-sql", "configs/nexmark/q5.yaml"]) == set()
    assert _imported(["fuse", "--json", "-", "configs/synthetic/linear_chain.yaml"]) == set()  # no SQL in it
    assert not _imported(["fuse", "--json", "-", "configs/nexmark/q5.yaml"]) & {"torch", "torch_geometric"}
