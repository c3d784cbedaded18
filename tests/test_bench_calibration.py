"""The calibration fidelity figures in docs/flink.md come from windows shipped in benchmarks/results: replaying
them (`bench_calibration.py --replay`, which measures nothing) must print the figures the doc quotes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_calibration", ROOT / "benchmarks" / "bench_calibration.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAVED = sorted((ROOT / "benchmarks" / "results").glob("calibration-*.json"))


def test_both_executors_have_saved_windows() -> None:
    assert {json.loads(path.read_text())["executor"] for path in SAVED} == {"local", "flink"}


@pytest.mark.parametrize("saved", SAVED, ids=lambda path: path.stem)
def test_replayed_windows_give_the_figures_the_doc_quotes(saved: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    assert _bench().main(["--replay", str(saved), "--json", str(rows_file)]) == 0
    printed = capsys.readouterr().out
    doc = (ROOT / "docs" / "flink.md").read_text()
    summary = [line for line in printed.splitlines() if line.startswith(("held-out windows:", "with contention", "deployments of one"))]
    # Effective cores, contention, contention and preemption; and the deployments' spread where they were kept.
    data = json.loads(saved.read_text())
    kept_deployments = all("deployments" in w for job in data["jobs"] for w in job["windows"])
    assert len(summary) == (4 if kept_deployments else 3)
    for line in summary:
        assert line in doc, f"docs/flink.md does not quote the replayed figure {line!r}"
    # Every held-out window of every job was predicted, from calibration windows of the same job only.
    rows = json.loads(rows_file.read_text())
    assert len(rows) == sum(len(job["windows"]) for job in data["jobs"])
    assert sum(r["role"] == "held out" for r in rows) == 12
    measured = {(r["job"], json.dumps(r["parallelism"], sort_keys=True)): r["measured_rps"] for r in rows}
    for job in data["jobs"]:
        for window in job["windows"]:
            key = (job["name"], json.dumps(window["parallelism"], sort_keys=True))
            assert measured[key] == window["observation"]["achieved_rate_rps"]


def test_each_jobs_preemption_comes_from_the_other_jobs_windows_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    saved = next(path for path in SAVED if json.loads(path.read_text())["executor"] == "local")
    data = json.loads(saved.read_text())
    bench = _bench()
    rows_file = tmp_path / "rows.json"
    assert bench.main(["--replay", str(saved), "--json", str(rows_file)]) == 0
    full = {r["job"]: r["preemption"] for r in json.loads(rows_file.read_text())}
    # A job's own held-out windows do not move its preemption: change them, and only the others' values move.
    first = data["jobs"][0]
    for window in first["windows"]:
        if window["role"] == "held out":
            window["observation"]["achieved_rate_rps"] *= 0.5
            window.pop("deployments", None)
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    assert bench.main(["--replay", str(changed), "--json", str(rows_file)]) == 0
    moved = {r["job"]: r["preemption"] for r in json.loads(rows_file.read_text())}
    assert moved[first["name"]] == full[first["name"]]
    assert any(moved[name] != full[name] for name in full if name != first["name"])
    # Alone, a job has no other windows to read the machine from.
    data["jobs"] = data["jobs"][:1]
    changed.write_text(json.dumps(data))
    capsys.readouterr()
    assert bench.main(["--replay", str(changed)]) == 0
    assert "preemption 0.00 (from no other job)" in capsys.readouterr().out
