"""Output and JSON input shared by all commands: atomic, no writes through planted links or into devices,
modes kept, temp files cleaned, strict JSON (no repeated keys, no absurd integers) with positions."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtune_cli.errors import SpecError
from streamtune_cli.io import (
    MAX_JSON_INT_DIGITS,
    OutputError,
    locate_json_path,
    read_json_file,
    read_json_text,
    read_text_bounded,
    write_json_atomic,
    write_text_atomic,
)


@pytest.fixture
def watchdog() -> Iterator[None]:
    """A safety net for tests of 'never blocks': a regression fails the test instead of hanging the suite."""
    def expired(signum: int, frame: Any) -> None:
        raise AssertionError("blocked: the call did not return")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_writes_atomically_with_normal_mode(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "a" / "b.txt", "hello")
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]  # no temp file left behind


def test_dev_null_and_stdout_are_the_only_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_text_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    write_text_atomic("-", "to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"
    for device in ("/dev/zero", "/dev/full"):
        if os.path.exists(device):
            with pytest.raises(OutputError, match=f"cannot write {device}: it is a device"):
                write_text_atomic(device, "x", explicit=True)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path, watchdog: None) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="it is a FIFO"):
        write_text_atomic(fifo, "x", explicit=True)
    link = tmp_path / "report.json"
    link.symlink_to(fifo)  # a FIFO planted behind a link is refused too, never opened
    with pytest.raises(OutputError, match="it is a FIFO"):
        write_text_atomic(link, "x")
    with pytest.raises(SpecError, match="not a regular file"):
        read_text_bounded(fifo, "report")


def test_a_planted_symlink_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "outside.txt"
    victim.write_text("precious")
    report = tmp_path / "report"
    report.mkdir()
    (report / "trace.json").symlink_to(victim)
    with pytest.raises(OutputError, match="symbolic link .*only when it is the output path you named"):
        write_text_atomic(report / "trace.json", "overwritten?")
    assert victim.read_text() == "precious" and (report / "trace.json").is_symlink()


def test_a_symlink_named_explicitly_is_written_through_keeping_the_targets_mode(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_text_atomic(link, "new", explicit=True)
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "target.txt"]


def test_a_dangling_link_never_creates_folders(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "deep" / "file.json"
    link = tmp_path / "out.json"
    link.symlink_to(outside)
    for explicit in (False, True):
        with pytest.raises(OutputError, match=str(link)):
            write_text_atomic(link, "x", explicit=explicit)
    assert not (tmp_path / "outside").exists()
    # a folder component that is a dangling link is not created either
    (tmp_path / "sub").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="in the way"):
        write_text_atomic(tmp_path / "sub" / "x" / "y.json", "x")
    assert not (tmp_path / "nowhere").exists()


def test_a_symlink_loop_is_one_clear_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    with pytest.raises(OutputError, match=f"cannot write {loop}: Too many levels of symbolic links"):
        write_text_atomic(loop, "x", explicit=True)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OutputError, match="cannot write"):
        write_text_atomic(tmp_path / "a" / "out.json", "x")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a link owned by another user needs root")
def test_a_link_of_another_user_in_a_shared_sticky_folder_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = shared / "out.json"
    link.symlink_to(victim)
    os.lchown(link, 4242, 4242)
    with pytest.raises(OutputError, match="owned by another user"):
        write_text_atomic(link, "x", explicit=True)
    assert victim.read_text() == "precious"


def test_a_read_only_file_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{}")
    path.chmod(0o444)
    with pytest.raises(OutputError, match="read-only \\(mode 0444\\)"):
        write_text_atomic(path, "changed", explicit=True)
    assert path.read_text() == "{}" and stat.S_IMODE(path.stat().st_mode) == 0o444


def test_an_unwritable_folder_is_one_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        folder = Path("/sys")  # root may write any folder on a normal file system, not in sysfs
        if not folder.is_dir():
            pytest.skip("no folder that root cannot write")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    with pytest.raises(OutputError, match=f"cannot write {folder}/out.json: Permission denied"):
        write_text_atomic(folder / "out.json", "x")


def test_unwritable_paths_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        write_text_atomic(tmp_path, "x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=f"cannot write {blocker}/out.json"):
        write_json_atomic(blocker / "out.json", {})
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "nan.json", {"x": float("nan")})  # never write non-standard JSON


def test_temp_files_are_removed_on_failure_and_after_a_killed_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.json"

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", failing_replace)
        with pytest.raises(OutputError, match="No space left on device"):
            write_text_atomic(path, "x")
    assert list(tmp_path.iterdir()) == []
    # A temp file of a writer killed with -9 (its process is gone) goes with the next write of the same file;
    # one of a live writer stays.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.json.stmp-{dead.pid}-abc"
    live = tmp_path / f".out.json.stmp-{os.getppid()}-abc"
    stale.write_text("half")
    live.write_text("in progress")
    write_text_atomic(path, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.json", live.name])


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "does not exist"),
        ("{\n  \"a\": 1,\n}", ":3:1: invalid JSON"),
        ("[" * 100_000, "nested too deeply"),
        ('{\n  "a": 1,\n  "b": {"c": 2, "c": 3}\n}', ':3:17: duplicate key \'c\' in b (first at 3:9)'),
        ('{"verdict": "pass",\n "verdict": "fail"}', ":2:2: duplicate key 'verdict'"),
        ('{"x": [1, 2,\n  ' + "9" * 300 + "]}", f":2:3: an integer of 300 digits (x.2) is out of range (at most {MAX_JSON_INT_DIGITS} digits)"),
        ('{"x": -' + "9" * 5000 + "}", ":1:7: an integer of 5000 digits (x)"),
        (b"{\"a\": \"\xff\"}", ":1:8: report is not UTF-8"),
    ],
)
def test_json_errors_name_the_file_and_position(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    path = tmp_path / "report.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SpecError) as info:
        read_json_file(path, "report")
    assert str(path) in str(info.value) and message in str(info.value)


def test_read_refuses_devices_and_cuts_at_the_limit(tmp_path: Path, watchdog: None) -> None:
    with pytest.raises(SpecError, match="not a regular file"):
        read_text_bounded("/dev/zero", "report")
    big = tmp_path / "big.json"
    big.write_text("x" * 2000)
    with pytest.raises(SpecError, match="larger than"):
        read_text_bounded(big, "report", limit=1000)


def test_locate_json_path(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text('{\n  "steps": [\n    {"p": 1},\n    {"p": 2, "q": [7, 8]}\n  ]\n}\n')
    assert str(locate_json_path(path, ("steps", 1, "p"))) == f"{path}:4:11"
    assert str(locate_json_path(path, ("steps", 1, "q", 1))) == f"{path}:4:23"
    assert str(locate_json_path(path, ("steps", 1, "missing"))) == f"{path}:4:5"  # the enclosing value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)


@given(value=json_values, indent=st.sampled_from([None, 1, 2]))
def test_strict_reading_agrees_with_json_on_valid_documents(value: Any, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    assert read_json_text(text, "x.json") == json.loads(text)


@given(value=st.dictionaries(st.text(max_size=4), json_values, min_size=1, max_size=4), data=st.data())
def test_a_repeated_key_is_found_wherever_it_is(value: dict[str, Any], data: st.DataObject) -> None:
    # Repeat one key of the object (at the end, as a hand edit or a merge would) inside a list wrapper.
    key = data.draw(st.sampled_from(sorted(value)))
    body = json.dumps(value, indent=1)
    text = "[0,\n" + body[:-1].rstrip() + ",\n " + json.dumps(key) + ": null\n}]"
    with pytest.raises(SpecError) as info:
        read_json_text(text, "x.json")
    [problem] = info.value.problems
    offset = text.rindex("\n " + json.dumps(key) + ": null") + 2
    line = text.count("\n", 0, offset) + 1
    assert (problem.location.line, problem.location.column) == (line, 2)
    assert "duplicate key" in problem.message


PLANTED = ["nothing", "file", "read_only", "link_outside", "link_dangling_deep", "link_loop", "fifo", "folder", "link_to_folder"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the watchdog spans every example
@given(planted=st.sampled_from(PLANTED), explicit=st.booleans(), nested=st.booleans())
def test_whatever_is_planted_at_an_output_path_the_outcome_is_safe(watchdog: None, planted: str, explicit: bool, nested: bool) -> None:
    """Any object at the output path: either the output is written where it should be, or one OutputError;
    never another exception, never a write outside the output folder unless a named link leads there,
    never a folder created outside, never a temp file left behind, never a block on a FIFO."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        outside = root / "outside"
        outside.mkdir()
        victim = outside / "victim.txt"
        victim.write_text("precious")
        folder = root / "out" / ("sub" if nested else "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "report.json"
        if planted in ("file", "read_only"):
            path.write_text("old")
            path.chmod(0o444 if planted == "read_only" else 0o640)
        elif planted == "link_outside":
            path.symlink_to(victim)
        elif planted == "link_dangling_deep":
            path.symlink_to(outside / "deep" / "er" / "x.json")
        elif planted == "link_loop":
            path.symlink_to(path)
        elif planted == "fifo":
            os.mkfifo(path)
        elif planted == "folder":
            path.mkdir()
        elif planted == "link_to_folder":
            path.symlink_to(outside)
        try:
            write_text_atomic(path, "new", explicit=explicit)
            ok = True
        except OutputError as exc:
            ok = False
            assert str(path) in str(exc)
        expected_ok = planted in ("nothing", "file") or (planted == "link_outside" and explicit)
        assert ok == expected_ok, (planted, explicit)
        if planted == "link_outside" and explicit:
            assert victim.read_text() == "new" and path.is_symlink()
        else:
            assert victim.read_text() == "precious"
        if ok and planted != "link_outside":
            assert path.read_text() == "new" and not path.is_symlink()
        if planted == "file":
            assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]  # nothing created outside
        leftovers = [p.name for p in folder.iterdir() if ".stmp-" in p.name]
        assert leftovers == []
