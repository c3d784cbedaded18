"""The report as one set: manifest, reader checks, leftovers of killed writers, and refused targets."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamtune_cli.errors import SpecError
from streamtune_cli.io import OutputError
from streamtune_cli.report.trace_report import (
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    REPORT_FILES,
    read_report_set,
    write_report_set,
    write_trace_reports,
)

SET_NAMES = sorted([*REPORT_FILES, MANIFEST_NAME])


def _files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in REPORT_FILES}


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory, failed_trace, good_trace) -> tuple[dict[str, bytes], dict[str, bytes]]:  # noqa: ANN001
    """The files of two different runs (a failed one and a good one)."""
    folder = tmp_path_factory.mktemp("sets")
    write_trace_reports(failed_trace[0], folder / "a", oracle=failed_trace[1])
    write_trace_reports(good_trace[0], folder / "b", oracle=good_trace[1])
    return _files(folder / "a"), _files(folder / "b")


def test_manifest_names_every_file_with_its_hash(tmp_path: Path, good_trace):
    paths = write_trace_reports(good_trace[0], tmp_path, oracle=good_trace[1])
    assert [p.name for p in paths] == [*REPORT_FILES, MANIFEST_NAME]
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["schema"] == MANIFEST_SCHEMA
    for name in REPORT_FILES:
        data = (tmp_path / name).read_bytes()
        assert manifest["files"][name] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # the set id is the trace's hash, and the documents name it
    assert manifest["set_id"] == hashlib.sha256((tmp_path / "trace.json").read_bytes()).hexdigest()[:16]
    assert manifest["set_id"] in (tmp_path / "report.html").read_text()
    assert manifest["set_id"] in (tmp_path / "report.md").read_text()
    assert read_report_set(tmp_path) == _files(tmp_path)
    assert sorted(os.listdir(tmp_path)) == SET_NAMES


def test_reader_refuses_a_mixed_or_incomplete_set(tmp_path: Path, two_sets):
    a, b = two_sets
    write_report_set(tmp_path, a, set_id="a")
    (tmp_path / "report.html").write_bytes(b["report.html"])  # another run's file beside this set
    with pytest.raises(SpecError, match="report.html is not the file manifest.json lists"):
        read_report_set(tmp_path)
    (tmp_path / "report.html").unlink()
    with pytest.raises(SpecError, match="report.html, listed in manifest.json, is missing"):
        read_report_set(tmp_path)
    (tmp_path / MANIFEST_NAME).unlink()
    with pytest.raises(SpecError, match="no complete report set"):
        read_report_set(tmp_path)
    write_report_set(tmp_path, b, set_id="b")
    assert read_report_set(tmp_path) == b


def test_leftovers_of_killed_writers_are_removed(tmp_path: Path, two_sets):
    a, _ = two_sets
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    live_pid = os.getppid()  # pytest's parent: alive for as long as this test runs
    staging = tmp_path / f".report-set.stmp-{dead_pid}-abc123"
    staging.mkdir()
    (staging / "trace.json").write_text("half")
    leftovers = [f".trace.json.stmp-{dead_pid}-x1y2", ".report.html.ab3de_f9", f".partial-trace.json.stmp-{dead_pid}-q"]
    for name in leftovers:
        (tmp_path / name).write_text("half a file")
    busy = tmp_path / f".partial-trace.json.stmp-{live_pid}-w"  # a write still going on in a live process
    busy.write_text("being written")
    (tmp_path / "notes.txt").write_text("the user's own file")
    write_report_set(tmp_path, a, set_id="a")
    assert sorted(os.listdir(tmp_path)) == sorted([*SET_NAMES, "notes.txt", busy.name])
    assert read_report_set(tmp_path) == a


def test_a_planted_link_is_refused_and_nothing_changes(tmp_path: Path, two_sets):
    a, b = two_sets
    out = tmp_path / "out"
    write_report_set(out, a, set_id="a")
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    (out / "report.html").unlink()
    (out / "report.html").symlink_to(outside)
    with pytest.raises(OutputError, match="symbolic link"):
        write_report_set(out, b, set_id="b")
    assert outside.read_text() == "not yours" and (out / "report.html").is_symlink()
    assert (out / "trace.json").read_bytes() == a["trace.json"]  # refused before anything was touched
    assert not [p for p in os.listdir(out) if p.startswith(".")]


@pytest.mark.parametrize("obstacle", ["directory", "read-only"])
def test_a_file_that_cannot_be_replaced_is_refused_up_front(tmp_path: Path, two_sets, obstacle: str):
    a, b = two_sets
    write_report_set(tmp_path, a, set_id="a")
    if obstacle == "directory":
        (tmp_path / "summary.json").unlink()
        (tmp_path / "summary.json").mkdir()
    else:
        os.chmod(tmp_path / "summary.json", 0o444)
    with pytest.raises(OutputError, match="summary.json"):
        write_report_set(tmp_path, b, set_id="b")
    assert (tmp_path / "trace.json").read_bytes() == a["trace.json"]
    assert (tmp_path / MANIFEST_NAME).exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_a_writable_file_keeps_its_mode(tmp_path: Path, two_sets):
    a, b = two_sets
    write_report_set(tmp_path, a, set_id="a")
    os.chmod(tmp_path / "report.html", 0o640)
    write_report_set(tmp_path, b, set_id="b")
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o640
    assert read_report_set(tmp_path) == b


def test_only_report_names_are_written(tmp_path: Path):
    for name in ("../escape.json", ".hidden", MANIFEST_NAME):
        with pytest.raises(ValueError):
            write_report_set(tmp_path, {name: b"x"}, set_id="x")


def test_a_file_where_the_folder_should_be_is_one_clear_error(tmp_path: Path, two_sets):
    (tmp_path / "report").write_text("a file")
    with pytest.raises(OutputError, match="it is a file, not a folder"):
        write_report_set(tmp_path / "report", two_sets[0], set_id="a")
