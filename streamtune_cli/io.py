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

__all__ = ["OutputError", "write_text_atomic", "write_json_atomic", "read_json_file"]


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


def read_json_file(path: str | Path, role: str = "JSON file") -> Any:
    """Parse a JSON file; every failure is a SpecError naming the file (and line:col for syntax errors).

    `role` says what the file is for ("baseline", "tuning trace") in the messages.
    """
    path = Path(path)
    where = Location(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(where, f"{role} does not exist")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(where, f"{role} is a directory, not a file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(where, f"cannot read {role}: {exc}")]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError([Problem(Location(str(path), exc.lineno, exc.colno), f"invalid JSON: {exc.msg}")]) from None
    except RecursionError:
        raise SpecError([Problem(where, f"{role} is nested too deeply to be a streamtune file")]) from None
