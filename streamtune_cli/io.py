"""File input/output shared by every command: atomic writes that never clobber devices or links, and
JSON reading whose errors name the file and position."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from streamtune_cli.errors import Location, Problem, SpecError, StreamtuneError

__all__ = ["OutputError", "write_text_atomic", "write_json_atomic", "read_json_file", "read_text_bounded", "MAX_INPUT_BYTES"]

# The largest file streamtune reads as input (specs, traces, reports, baselines, schedules): far above any
# real job (a 50,000-operator spec is about 10 MB), far below what would exhaust memory.
MAX_INPUT_BYTES = 64 * 1024 * 1024


class OutputError(StreamtuneError):
    """An output file cannot be written (a directory in the way, no permission, no space...)."""


def _atomic_replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp creates 0600 files; give the result the mode a plain open() would (0666 less umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` so that a crash never leaves half a file: temp file in the same folder, then rename.

    A symlink is written through (its target is replaced, the link stays); a device or FIFO such as
    /dev/null or /dev/stdout is written directly, since renaming over it would replace the device.
    """
    path = Path(path)
    try:
        target = path.resolve() if path.is_symlink() else path
        if target.is_dir():
            raise OutputError(f"cannot write {path}: it is a directory")
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)
            return path
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_replace(target, text)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_text_bounded(path: str | Path, role: str = "file", limit: int = MAX_INPUT_BYTES) -> str:
    """Read a regular UTF-8 text file of at most `limit` bytes; every failure is a SpecError naming the file.

    Devices, FIFOs and directories are refused before they are opened (reading /dev/zero would never end,
    opening a FIFO would block), and the size is checked on the open file, so a file that grows while it is
    read is still cut at `limit`.
    """
    path = Path(path)
    where = Location(str(path))
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SpecError([Problem(where, f"{role} does not exist")]) from None
    except OSError as exc:
        raise SpecError([Problem(where, f"cannot read {role}: {exc.strerror or exc}")]) from None
    if stat.S_ISDIR(info.st_mode):
        raise SpecError([Problem(where, f"{role} is a directory, not a file")])
    if not stat.S_ISREG(info.st_mode):
        raise SpecError([Problem(where, f"{role} is not a regular file (a device, FIFO or socket)")])
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SpecError([Problem(where, f"cannot read {role}: {exc.strerror or exc}")]) from None
    if len(data) > limit:
        raise SpecError([Problem(where, f"{role} is larger than {limit // (1024 * 1024)} MiB, the most streamtune reads")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Problem(Location(str(path), line, column), f"{role} is not UTF-8 text (byte 0x{data[exc.start]:02x})")]) from None


def read_json_file(path: str | Path, role: str = "JSON file") -> Any:
    """Parse a JSON file; every failure is a SpecError naming the file (and line:col for syntax errors).

    `role` says what the file is for ("baseline", "tuning trace") in the messages.
    """
    path = Path(path)
    where = Location(str(path))
    text = read_text_bounded(path, role)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError([Problem(Location(str(path), exc.lineno, exc.colno), f"invalid JSON: {exc.msg}")]) from None
    except RecursionError:
        raise SpecError([Problem(where, f"{role} is nested too deeply to be a streamtune file")]) from None
