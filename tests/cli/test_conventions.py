"""The conventions every command follows (docs/cli.md): output paths with `-` for stdout, schema names in
every JSON output, exit codes in --help, tune's exit code, --debug after the command, flags and choices in
help, shell completion, and tables that stay readable on 80 columns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.cli.commands.tuning_commands import tune_failure

ROOT = Path(__file__).resolve().parents[2]
Q5 = str(ROOT / "configs/nexmark/q5.yaml")
CHAIN = str(ROOT / "configs/synthetic/linear_chain.yaml")
SCHEMA_NAME = re.compile(r"^streamtune\.[a-z][a-z0-9-]*/[1-9][0-9]*$")
runner = CliRunner()


def flat(text: str) -> str:
    """Output with rich's box borders and line wrapping undone, for substring checks."""
    return " ".join(text.replace("│", " ").split())


# ---- one output convention: `--json [PATH]`, `--out PATH`, `-` is stdout ------------------------------


# Each command with a JSON output, and the schema name it must carry.
JSON_COMMANDS = [
    (["tune", CHAIN, "--tuner", "ds2", "--max-steps", "3"], "streamtune.tune-summary/1"),
    (["simulate", Q5, "--noise", "0"], "streamtune.simulate/1"),
    (["run", Q5, "--executor", "sim", "--duration", "5", "--warmup", "0"], "streamtune.run/1"),
]


@pytest.mark.parametrize(("command", "schema"), JSON_COMMANDS, ids=lambda c: c[0] if isinstance(c, list) else "")
def test_json_alone_and_json_dash_print_the_same_json_on_stdout(command: list[str], schema: str) -> None:
    bare = runner.invoke(app, [*command, "--json"])
    dash = runner.invoke(app, [*command, "--json", "-"])
    assert bare.exit_code == 0 and dash.exit_code == 0, bare.output + dash.output
    data = json.loads(bare.stdout)
    assert data == json.loads(dash.stdout)
    assert data["schema"] == schema and SCHEMA_NAME.match(schema)
    # `--json` followed by another option, or by the job spec, still means stdout.
    for args in ([*command[:2], "--json", *command[2:]], [command[0], "--json", *command[1:]]):
        before = runner.invoke(app, args)
        assert before.exit_code == 0, before.output
        assert json.loads(before.stdout) == data


@pytest.mark.parametrize(("command", "schema"), JSON_COMMANDS, ids=lambda c: c[0] if isinstance(c, list) else "")
def test_json_path_writes_the_file_and_says_so(command: list[str], schema: str, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out.json"
    result = runner.invoke(app, [*command, "--json", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["schema"] == schema
    assert result.stdout.count(f"wrote {target}") == 1  # one line per file written
    assert "operator" in result.stdout  # the tables are still printed


def test_show_json_carries_its_schema_and_every_default() -> None:
    data = json.loads(runner.invoke(app, ["show", Q5, "--format", "json"]).stdout)
    assert data["schema"] == "streamtune.spec/1"
    # Fields left out of q5.yaml appear with the defaults the tools use.
    assert "restart_s" not in (ROOT / "configs/nexmark/q5.yaml").read_text()
    assert data["restart_s"] is not None
    for op in data["operators"]:
        assert {"max_parallelism", "chaining", "slot_sharing_group", "cost_us", "selectivity"} <= set(op)
    for edge in data["edges"]:
        assert {"from", "to", "partitioning", "exchange"} <= set(edge)


def test_show_and_schema_write_to_out(tmp_path: Path) -> None:
    for fmt in ("json", "mermaid", "text"):
        target = tmp_path / f"q5.{fmt}"
        result = runner.invoke(app, ["show", Q5, "--format", fmt, "--out", str(target)])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"wrote {target}"
        assert "bids_per_auction" in target.read_text()
    assert "\x1b[" not in (tmp_path / "q5.text").read_text()  # no colour codes in a file
    schema = tmp_path / "spec.schema.json"
    assert runner.invoke(app, ["schema", "--out", str(schema)]).exit_code == 0
    assert json.loads(schema.read_text()) == json.loads(runner.invoke(app, ["schema"]).stdout)


def test_tune_out_folder_lists_every_file_it_writes(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = [line.removeprefix("wrote ") for line in result.stdout.splitlines() if line.startswith("wrote ")]
    assert {Path(p).name for p in written} >= {"trace.json", "summary.json", "report.md", "report.html"}
    assert all(Path(p).is_file() for p in written)
    # The old name is a hidden alias that still works.
    old = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--report", str(tmp_path / "old")])
    assert old.exit_code == 0 and (tmp_path / "old" / "trace.json").is_file()
    assert "--report" not in runner.invoke(app, ["tune", "--help"]).stdout


def test_tune_json_is_gateable_like_summary_json(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--out", str(out), "--json"])
    printed = json.loads(result.stdout)
    summary = json.loads((out / "summary.json").read_text())
    # Every metric summary.json has, the printed JSON has with the same value (the gate rules read these).
    for key, value in summary.items():
        if key != "schema":
            assert printed[key] == value, key
    for metric in ("reconfigurations", "final_total_parallelism", "final_over_oracle", "target_met"):
        assert metric in printed


def test_two_outputs_on_stdout_are_refused(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    runner.invoke(app, ["tune", Q5, "--tuner", "ds2", "--out", str(tmp_path)])
    result = runner.invoke(app, ["calibrate", str(trace), "--out", "-", "--json", "-"])
    assert result.exit_code == 2 and "--out and --json both want stdout" in result.output


# ---- exit codes ---------------------------------------------------------------------------------------


def test_help_documents_every_exit_code() -> None:
    text = flat(runner.invoke(app, ["--help"]).stdout)
    for code, meaning in (("0", "ok"), ("1", "a check failed"), ("2", "bad input"), ("3", "internal error"),
                          ("4", "an executor failed"), ("130", "interrupted")):
        assert f"{code} {meaning}" in text
    tune_help = flat(runner.invoke(app, ["tune", "--help"]).stdout)
    assert "1 it ran but does not keep up at the peak, or the loop stalled" in tune_help


def _meta(stop_reason: str, target_met: bool) -> dict:
    return {"stop_reason": stop_reason, "target_met": target_met, "peak_target_rate_rps": 1000.0}


@pytest.mark.parametrize(
    ("stop_reason", "target_met", "fails"),
    [
        ("converged", True, False),
        ("max_steps", True, False),
        ("max_steps", False, True),
        ("at_bounds", False, True),
        ("tuner_converged", False, True),
        ("stalled", False, True),
        ("stalled", True, True),
        ("dry_run", False, False),
    ],
)
def test_tune_fails_exactly_when_the_target_is_missed_or_the_loop_stalled(stop_reason: str, target_met: bool, fails: bool) -> None:
    assert (tune_failure(_meta(stop_reason, target_met)) is not None) == fails


def test_tune_exit_code_follows_the_target() -> None:
    met = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--json"])
    assert met.exit_code == 0 and json.loads(met.stdout)["target_met"] is True
    capped = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--parallelism-cap", "1", "--json"])
    assert capped.exit_code == 1 and json.loads(capped.stdout)["target_met"] is False
    # A dry run only recommends: exit 0 even though p=1 does not keep up.
    dry = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--parallelism-cap", "1", "--dry-run"])
    assert dry.exit_code == 0, dry.output


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [")
    for args in (["validate", "--debug", str(bad)], ["show", str(bad), "--debug"], ["tune", str(bad), "--debug"]):
        result = subprocess.run([sys.executable, "-m", "streamtune_cli", *args], capture_output=True, text=True)
        assert result.returncode == 2, args
        assert "Traceback" in result.stderr and f"{bad}:1:" in result.stderr, args
        quiet = subprocess.run(
            [sys.executable, "-m", "streamtune_cli", *[a for a in args if a != "--debug"]], capture_output=True, text=True
        )
        assert quiet.returncode == 2 and "Traceback" not in quiet.stderr


# ---- names: choices, flags, version, completion -------------------------------------------------------


def test_executor_and_tuner_list_their_values_in_help() -> None:
    text = flat(runner.invoke(app, ["tune", "--help"]).stdout)
    assert "<sim|local|flink>" in text
    assert "streamtune (history-pretrained, the default), ds2, conttune or autoscaler" in text
    assert "<sim|local|flink>" in flat(runner.invoke(app, ["run", "--help"]).stdout)


def test_tuner_names_match_the_registry() -> None:
    from streamtune_cli.cli.commands.tuning_commands import TUNER_NAMES
    from streamtune_cli.tuning.tuners import TUNER_NAMES as REGISTERED

    assert set(TUNER_NAMES) == set(REGISTERED) and TUNER_NAMES[0] == "streamtune"


@pytest.mark.parametrize("command", [[], ["tune"], ["validate"], ["flink"], ["bench"], ["show"], ["simulate"]])
def test_flags_are_shown_without_a_type(command: list[str]) -> None:
    text = runner.invoke(app, [*command, "--help"]).stdout
    assert "--help" in text and "<bool>" not in text


def test_version_and_completion() -> None:
    from streamtune_cli import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"streamtune {__version__}"
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout
    env = {**os.environ, "_STREAMTUNE_COMPLETE": "complete_bash", "COMP_WORDS": "streamtune tune x.yaml --tuner ", "COMP_CWORD": "4"}
    result = subprocess.run([sys.executable, "-m", "streamtune_cli"], env=env, capture_output=True, text=True)
    assert result.stdout.split() == ["streamtune", "ds2", "conttune", "autoscaler"]


# ---- tables on 80 columns -----------------------------------------------------------------------------


def _at_80_columns(args: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "80", "CI": "true"}
    result = subprocess.run([sys.executable, "-m", "streamtune_cli", *args], env=env, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    return result.stdout


def test_validate_table_keeps_every_path_whole_on_80_columns() -> None:
    text = _at_80_columns(["validate", "configs", "--no-sql"])
    for path in sorted(ROOT.glob("configs/**/*.yaml")):
        # Whole, on one line (a folded path would be split across two).
        assert any(str(path.relative_to(ROOT)) in line for line in text.splitlines()), path


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "configs/synthetic/linear_chain.yaml", "--noise", "0"],
        ["tune", "configs/synthetic/linear_chain.yaml", "--tuner", "ds2"],
        ["tune", "configs/nexmark/q3.yaml", "--tuner", "ds2", "--dry-run"],
        ["run", "configs/nexmark/q3.yaml", "--executor", "sim", "--duration", "5"],
    ],
)
def test_operator_tables_keep_every_operator_name_whole_on_80_columns(args: list[str]) -> None:
    text = _at_80_columns(args)
    spec = json.loads(runner.invoke(app, ["show", str(ROOT / args[1]), "-f", "json"]).stdout)
    for op in spec["operators"]:
        assert re.search(rf"(^|[\s│┃]){re.escape(op['id'])}([\s│┃]|$)", text, re.M), op["id"]


@pytest.mark.parametrize(
    "command",
    [[], ["validate"], ["show"], ["schema"], ["tune"], ["simulate"], ["run"], ["bench"], ["calibrate"], ["pretrain"],
     ["flink", "up"], ["flink", "status"], ["flink", "submit"], ["import", "flink"]],
    ids=lambda c: " ".join(c) or "streamtune",
)
def test_help_is_whole_on_80_columns(command: list[str]) -> None:
    # Nothing cut off with an ellipsis: option names, paths and option values stay readable.
    text = _at_80_columns([*command, "--help"])
    assert "…" not in text


def _doc_commands() -> list[str]:
    text = (ROOT / "docs/cli.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("streamtune "):
                commands.append(command)
    return commands


@pytest.mark.parametrize("command", _doc_commands())
def test_every_command_in_docs_cli_runs(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    (tmp_path / "configs").symlink_to(ROOT / "configs")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, f"{command}\n{result.output}"


def test_docs_cli_lists_every_exit_code_the_help_lists() -> None:
    doc = (ROOT / "docs/cli.md").read_text()
    for code in ("0", "1", "2", "3", "4", "130"):
        assert f"\n| {code} |" in doc


def test_command_list_shows_each_summary_unbroken() -> None:
    import typer.main

    group = typer.main.get_command(app)
    commands = group.commands
    assert {"validate", "show", "schema", "tune", "simulate", "run", "bench", "calibrate", "pretrain"} <= set(commands)
    for name, command in commands.items():
        summary = command.short_help or ""
        assert "\n" not in summary and "  " not in summary, name


def test_gate_compares_tune_json_with_summary_json(tmp_path: Path) -> None:
    out = tmp_path / "report"
    printed = tmp_path / "printed.json"
    result = runner.invoke(app, ["tune", CHAIN, "--tuner", "ds2", "--out", str(out), "--json", str(printed)])
    assert result.exit_code == 0, result.output
    rules = str(ROOT / "streamtune_cli/data/gates/default.yaml")
    same = runner.invoke(app, ["gate", str(printed), "--baseline", str(out / "summary.json"), "--rules", rules])
    assert same.exit_code == 0, same.output
    data = json.loads(printed.read_text())
    data["final_total_parallelism"] *= 2
    data["final_over_oracle"] *= 2
    printed.write_text(json.dumps(data))
    worse = runner.invoke(app, ["gate", str(printed), "--baseline", str(out / "summary.json"), "--rules", rules])
    assert worse.exit_code == 1, worse.output
