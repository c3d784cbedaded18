"""Output and JSON input shared by all commands: atomic, safe with devices and links, clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from streamtune_cli.errors import SpecError
from streamtune_cli.io import OutputError, read_json_file, write_json_atomic, write_text_atomic


def test_writes_atomically_with_normal_mode(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "a" / "b.txt", "hello")
    assert path.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]  # no temp file left behind


def test_a_device_is_written_not_replaced() -> None:
    write_text_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_text_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_unwritable_paths_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        write_text_atomic(tmp_path, "x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=f"cannot write {blocker}/out.json"):
        write_json_atomic(blocker / "out.json", {})
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "nan.json", {"x": float("nan")})  # never write non-standard JSON


@pytest.mark.parametrize(
    "content,message",
    [(None, "does not exist"), ("{\n  \"a\": 1,\n}", ":3:1: invalid JSON"), ("[" * 100_000, "nested too deeply")],
)
def test_json_errors_name_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpecError) as info:
        read_json_file(path, "report")
    assert str(path) in str(info.value) and message in str(info.value)
