"""The SQL expressions the checker has already accepted, kept in the cache dir so that checking an unchanged
spec again does not import sqlglot (a quarter of `validate`'s start-up; docs/cli.md, "Start-up").

One file, `sql-accepted-v1.txt` in the cache dir (streamtune_cli.cachedir), one digest a line. A digest covers
the expression, its place (row-wise or aggregate) and a fingerprint of the checker: the bytes of spec/sql.py
and sqlglot's version, so an upgrade of either starts afresh. Only acceptances are kept; a rejected
expression is checked every time, so every error message is sqlglot's, with its position. The record is an
optimisation and nothing more: an unreadable, damaged or unwritable file is ignored, never an error, and
STREAMTUNE_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import stat
from pathlib import Path

from streamtune_cli.cachedir import cache_dir

__all__ = ["AcceptedExpressions", "RECORD_NAME"]

RECORD_NAME = "sql-accepted-v1.txt"
# Past this size the record starts over with what the current run adds (tens of thousands of expressions).
_MAX_BYTES = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{32}")


def _checker_fingerprint() -> bytes | None:
    """What the verdicts depend on besides the expression: the checker's source and sqlglot's version
    (read from its files: importing sqlglot is what this record saves). None when either cannot be read."""
    spec = importlib.util.find_spec("sqlglot")
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).parent
    try:
        checker = (Path(__file__).parent / "sql.py").read_bytes()
        version = (package / "_version.py").read_bytes()
    except OSError:
        return None
    return hashlib.sha256(checker + b"\0" + version + b"\0" + str(package).encode()).digest()


class AcceptedExpressions:
    """Digests of (expression, place) the checker accepted. `key` then `in` / `add`; `save` at the end."""

    def __init__(self, path: Path | None, fingerprint: bytes = b""):
        self.path = path
        self._fingerprint = fingerprint
        self._known: set[str] = set()
        self._new: list[str] = []
        self._size = 0

    @classmethod
    def load(cls) -> "AcceptedExpressions":
        if os.environ.get("STREAMTUNE_NO_CACHE", "").strip().lower() in ("1", "true", "yes", "on"):
            return cls(None)
        fingerprint = _checker_fingerprint()
        if fingerprint is None:
            return cls(None)
        record = cls(cache_dir() / RECORD_NAME, fingerprint)
        text, record._size = record._read()
        record._known = {line for line in text.split("\n") if _DIGEST.fullmatch(line)}
        return record

    def _read(self) -> tuple[str, int]:
        """(the record's text, its size): empty for a missing or unusable file, and a file over the size
        limit reads as empty but full, so that the next save starts it over."""
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return "", 0
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return "", 0
            if info.st_size > _MAX_BYTES:
                return "", info.st_size
            text = os.read(fd, _MAX_BYTES + 1).decode("ascii", "replace")
            return text, len(text)
        except OSError:
            return "", 0
        finally:
            os.close(fd)

    def key(self, sql: str, aggregate: bool) -> str:
        place = b"aggregate" if aggregate else b"row"
        return hashlib.sha256(self._fingerprint + b"\0" + place + b"\0" + sql.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def __contains__(self, key: str) -> bool:
        return self.path is not None and key in self._known

    def add(self, key: str) -> None:
        if self.path is not None and key not in self._known:
            self._known.add(key)
            self._new.append(key)

    def save(self) -> None:
        """Append what this run accepted (one write, O_APPEND: concurrent runs do not interleave lines)."""
        if self.path is None or not self._new:
            return
        data = "".join(key + "\n" for key in self._new).encode("ascii")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK
        if self._size + len(data) > _MAX_BYTES:
            flags |= os.O_TRUNC
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, flags, 0o600)
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            return
        self._new = []
