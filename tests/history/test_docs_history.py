"""docs/history.md stays true: its Python example runs, and its figures about the shipped sample are current."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.history.queries import history_stats

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs/history.md").read_text()
runner = CliRunner()


def test_python_example_runs_on_the_shipped_sample() -> None:
    code = re.search(r"```python\n(.*?)```", DOC, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for kind in ("window_aggregate", "join", "source", "sink"):
        assert kind in result.stdout


def test_sample_figures_in_the_doc_match_stats() -> None:
    stats = history_stats(ROOT / "sample_histories/history")
    assert f"reports {stats['runs']:,} runs, {stats['windows']:,} windows, {stats['rows']:,} rows" in DOC
    assert f"{stats['distinct_dags']} distinct DAGs, {len(stats['families'])} families" in DOC
    families = ", ".join(f"{name} {count}" for name, count in stats["families"].items())
    assert f"({families})" in " ".join(DOC.split())
    assert f"a bottleneck rate of {100 * stats['bottleneck_rate']:.1f}% of rows" in DOC
    assert f"{100 * stats['windows_with_bottleneck']:.1f}% of windows with at least one bottleneck" in DOC
    assert f"{100 * stats['windows_throttled']:.1f}% of\nwindows throttled" in DOC
    assert f"{stats['size_bytes'] / 1e6:.2f} MB on disk" in DOC


def test_the_assign_example_is_what_assign_prints() -> None:
    line = re.search(r"^(\S+): cluster (\d+) \(medoid (\S+)\), graph edit distance (\S+) \((exact)\)", DOC, re.M)
    assert line is not None
    result = runner.invoke(
        app, ["cluster", "assign", str(ROOT / "configs/nexmark/q3.yaml"), "--clusters", str(ROOT / "sample_histories/clusters.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert (got["job"], str(got["cluster"]), got["medoid_run_id"], f"{got['distance']:g}", got["exact"]) == (
        line.group(1), line.group(2), line.group(3), line.group(4), True
    )
