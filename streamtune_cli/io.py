"""File input/output shared by every command: atomic writes that never clobber devices or follow planted links,
and bounded reads of regular files whose errors name the file and position.

Output rule (docs/ci.md, "Output files"): a symbolic link is written through only when it is the very path the
user named as the output (`explicit=True`), never when streamtune derived the name (a file inside a report
folder), never for a link owned by someone else in a shared sticky folder such as /tmp, and never into a
folder that does not exist. A read-only file is not replaced; a writable one keeps its mode. Devices, FIFOs
and sockets are refused, except the process's own stdout/stderr and /dev/null; `-` means stdout.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from streamtune_cli.errors import Location, Problem, SpecError, StreamtuneError

__all__ = [
    "OutputError",
    "STDOUT",
    "write_text_atomic",
    "write_json_atomic",
    "read_json_file",
    "read_json_text",
    "read_text_bounded",
    "locate_json_path",
    "sweep_stale_temps",
    "process_alive",
    "fsync_dir",
    "MAX_INPUT_BYTES",
    "MAX_JSON_INT_DIGITS",
]

# The largest file streamtune reads as input (specs, traces, reports, baselines, schedules): far above any
# real job (a 50,000-operator spec is about 10 MB), far below what would exhaust memory.
MAX_INPUT_BYTES = 64 * 1024 * 1024
# Integers in JSON inputs: 20 digits hold every 64-bit counter and seed; more is an attack or a corruption
# (hundreds of digits overflow float arithmetic in gates, GED costs and the history's Parquet columns).
MAX_JSON_INT_DIGITS = 20
# The output path that means "write to standard output" (issue 14's convention for every command).
STDOUT = "-"
# Temp files of an atomic write: `.NAME.stmp-PID-XXXX` next to the target; a later write of the same target
# removes those whose process is gone (a writer killed with -9 cannot clean up after itself).
_TMP_MARK = ".stmp-"
_NAME_IN_TMP = 100  # keeps temp names under NAME_MAX for long file names


class OutputError(StreamtuneError):
    """An output file cannot be written (a directory in the way, no permission, a planted link, a device...)."""


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _tmp_prefix(path: Path) -> str:
    return f".{path.name[:_NAME_IN_TMP]}{_TMP_MARK}"


def sweep_stale_temps(path: str | Path) -> None:
    """Remove temp files of earlier atomic writes of `path` whose writer process no longer exists (a writer
    killed with -9 leaves one behind); every write does this, and a reader that resumes work may call it."""
    path = Path(path)
    prefix = _tmp_prefix(path)
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or process_alive(int(pid_text)):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            pass


def process_alive(pid: int) -> bool:
    """Whether a process exists (for temp files named by their writer's pid: a dead writer's are stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def fsync_dir(path: str | Path) -> None:
    """Make a rename in `path` durable (best effort: some file systems cannot fsync a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_replace(path: Path, text: str, existing: os.stat_result | None) -> None:
    """Write a temp file beside `path`, fsync it, give it the mode `path` has (or a new file's), rename it over."""
    sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if existing is not None:
            # The same permissions, but never set-user/group-id on new content (a shell's `>` would drop them too).
            os.chmod(tmp, stat.S_IMODE(existing.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
            if existing.st_uid != os.geteuid() or existing.st_gid != os.getegid():
                try:  # only root can give the file back to its owner; anyone else writes it as themselves
                    os.chown(tmp, existing.st_uid, existing.st_gid)
                except OSError:
                    pass
        else:
            # mkstemp creates 0600 files; a new output gets what a plain open() would give (0666 less umask).
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def _same_file(info: os.stat_result, fd: int) -> bool:
    try:
        return os.path.samestat(info, os.fstat(fd))
    except OSError:
        return False


def _special_sink(path: Path, info: os.stat_result) -> str:
    """How to write a non-regular output: 'stdout', 'stderr' or 'null'; OutputError for any other device.

    Nothing is opened: reopening a FIFO could block forever, and writing a disk device would destroy it.
    """
    if _same_file(info, 1):
        return "stdout"
    if _same_file(info, 2):
        return "stderr"
    try:
        if os.path.samestat(info, os.stat(os.devnull)):
            return "null"
    except OSError:
        pass
    what = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "a device"
    raise OutputError(f"cannot write {path}: it is {what}, not a file; streamtune writes regular files (`-` writes to stdout)")


def _check_link(link: Path, link_info: os.stat_result) -> None:
    """Refuse a link in a shared sticky folder (/tmp) that neither we nor the folder's owner made.

    The kernel's fs.protected_symlinks rule; applied here because an atomic write resolves the link itself
    and renames onto its target, which the kernel never sees as following it.
    """
    try:
        folder = os.stat(link.parent)
    except OSError:
        return
    shared = folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH
    if shared and link_info.st_uid not in (os.geteuid(), folder.st_uid):
        raise OutputError(
            f"cannot write {link}: it is a symbolic link owned by another user (uid {link_info.st_uid}) in the shared "
            f"folder {link.parent}; remove it or write elsewhere"
        )


def _resolve_output(path: Path, explicit: bool) -> tuple[Path, os.stat_result | None, str | None]:
    """(file to replace, its stat or None if new, special sink or None), after every output rule is checked."""
    # Links in the folders above are the user's choice of where to write, except in shared sticky folders.
    for ancestor in reversed(path.parents):
        try:
            info = os.lstat(ancestor)
        except OSError:
            break
        if stat.S_ISLNK(info.st_mode):
            _check_link(ancestor, info)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path, None, None
    if stat.S_ISLNK(info.st_mode):
        try:
            followed = os.stat(path)
        except FileNotFoundError:
            followed = None
        if followed is not None and not stat.S_ISREG(followed.st_mode) and not stat.S_ISDIR(followed.st_mode):
            return path, followed, _special_sink(path, followed)  # /dev/stdout is a link to /proc/self/fd/1
        if not explicit:
            raise OutputError(
                f"cannot write {path}: it is a symbolic link (to {os.readlink(path)}); streamtune writes through a link "
                "only when it is the output path you named"
            )
        _check_link(path, info)
        try:
            target = Path(os.path.realpath(path, strict=True))
        except FileNotFoundError:
            target = Path(os.path.realpath(path))
            if not target.parent.is_dir():
                raise OutputError(
                    f"cannot write {path}: it is a link to {target}, whose folder does not exist (links never create folders)"
                ) from None
            return target, None, None
        if followed is not None and stat.S_ISDIR(followed.st_mode):
            raise OutputError(f"cannot write {path}: it is a link to a directory")
        return target, followed, None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"cannot write {path}: it is a directory")
    if not stat.S_ISREG(info.st_mode):
        return path, info, _special_sink(path, info)
    return path, info, None


def write_text_atomic(path: str | Path, text: str, *, explicit: bool = False) -> Path:
    """Write `text` so that a crash never leaves half a file: temp file in the same folder, fsync, rename.

    `explicit`: `path` is exactly the output path the user named (an option's value), so a symbolic link
    there is written through; for names streamtune derives (files inside a report folder) a link is refused.
    An existing file keeps its mode; a read-only one is refused, as `>` in a shell would. `-` is stdout.
    Every failure is an OutputError naming the path (exit 2).
    """
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return Path(STDOUT)
    path = Path(path)
    try:
        target, existing, sink = _resolve_output(path, explicit)
        if sink is not None:
            if sink != "null":
                stream = sys.stdout if sink == "stdout" else sys.stderr
                stream.write(text)
                stream.flush()
            return path
        if existing is not None and (not stat.S_IMODE(existing.st_mode) & 0o222 or not os.access(target, os.W_OK)):
            raise OutputError(
                f"cannot write {path}: the file is read-only (mode {stat.S_IMODE(existing.st_mode):04o}); "
                "make it writable first if it should be replaced"
            )
        if existing is None and target == path:
            target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_replace(target, text, existing)
    except OutputError:
        raise
    except FileExistsError as exc:
        raise OutputError(f"cannot write {path}: {exc.filename or 'a folder on its path'} is in the way (a file or a broken link, not a folder)") from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) and _TMP_MARK not in str(exc.filename) else ""
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}{where}") from None
    return path


def write_json_atomic(path: str | Path, data: Any, *, explicit: bool = False) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n", explicit=explicit)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def read_text_bounded(path: str | Path, role: str = "file", limit: int = MAX_INPUT_BYTES) -> str:
    """Read a regular UTF-8 text file of at most `limit` bytes; every failure is a SpecError naming the file.

    Devices, FIFOs and directories are refused (reading /dev/zero would never end): the file is opened
    non-blocking, so even a FIFO swapped in after a check cannot hang, and checked on the open descriptor.
    The size is checked on what is read, so a file that grows while it is read is still cut at `limit`.
    """
    path = Path(path)
    where = Location(str(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SpecError([Problem(where, f"{role} does not exist")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(where, f"{role} is a directory, not a file")]) from None
    except OSError as exc:
        raise SpecError([Problem(where, f"cannot read {role}: {exc.strerror or exc}")]) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError([Problem(where, f"{role} is a directory, not a file")])
        if not stat.S_ISREG(info.st_mode):
            raise SpecError([Problem(where, f"{role} is not a regular file (a device, FIFO or socket)")])
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise SpecError([Problem(where, f"cannot read {role}: {exc.strerror or exc}")]) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SpecError([Problem(where, f"{role} is larger than {limit // (1024 * 1024)} MiB, the most streamtune reads")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Problem(Location(str(path), line, column), f"{role} is not UTF-8 text (byte 0x{data[exc.start]:02x})")]) from None


class _DuplicateKey(Exception):
    pass


class _HugeInteger(Exception):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise _HugeInteger
    return int(text)


# One JSON token: a string (escapes kept), a number, a literal, or a structural character.
_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null|NaN|-?Infinity|[{}\[\]:,]',
    re.S,
)
_SPACE = re.compile(r"[ \t\n\r]*")


def _json_events(text: str) -> Iterator[tuple[str, tuple[Any, ...], int, str]]:
    """Walk JSON text without recursion, yielding ("key", path of the object, offset, key) and
    ("value", path, offset, token) for every key and value in document order. Stops at the first token
    it cannot read (the text was already parsed by `json` up to the point of interest)."""
    stack: list[list[Any]] = []  # frames: [kind, current key or index, expecting a key]
    pos = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            return
        token = match.group(0)
        frame = stack[-1] if stack else None
        if token in ",:":
            if token == "," and frame is not None:
                if frame[0] == "obj":
                    frame[2] = True
                else:
                    frame[1] += 1
        elif token in "}]":
            stack.pop()
        elif frame is not None and frame[0] == "obj" and frame[2]:
            key = json.loads(token)
            yield "key", tuple(f[1] for f in stack[:-1]), pos, key
            frame[1], frame[2] = key, False
        else:
            path = tuple(f[1] for f in stack)
            yield "value", path, pos, token
            if token == "{":
                stack.append(["obj", None, True])
            elif token == "[":
                stack.append(["arr", 0, False])
        pos = _SPACE.match(text, match.end()).end()  # type: ignore[union-attr]


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _dotted(path: tuple[Any, ...]) -> str:
    """A JSON path as people write it (steps.1.observation), for messages; keys shortened."""
    return ".".join(str(part)[:40] for part in path)


def _first_duplicate(text: str) -> tuple[int, str, int, tuple[Any, ...]] | None:
    """(offset of the repeated key, the key, offset of its first occurrence, path of the object) for the
    first repeat in the text."""
    seen: dict[tuple[Any, ...], dict[str, int]] = {}
    for kind, path, offset, value in _json_events(text):
        if kind == "value" and value == "{":
            seen[path] = {}
        elif kind == "key":
            keys = seen.setdefault(path, {})
            if value in keys:
                return offset, value, keys[value], path
            keys[value] = offset
    return None


def _first_huge_integer(text: str) -> tuple[int, str, tuple[Any, ...]] | None:
    for kind, path, offset, token in _json_events(text):
        if kind == "value" and re.fullmatch(r"-?[0-9]+", token) and len(token.lstrip("-")) > MAX_JSON_INT_DIGITS:
            return offset, token, path
    return None


def read_json_text(text: str, file: str, role: str = "JSON file") -> Any:
    """Parse JSON text strictly: a repeated key in an object (which json would resolve silently, last one
    wins) and integers longer than MAX_JSON_INT_DIGITS digits are errors at file:line:col, like bad syntax."""
    where = Location(file)
    try:
        return json.loads(text, object_pairs_hook=_pairs_without_duplicates, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise SpecError([Problem(Location(file, exc.lineno, exc.colno), f"invalid JSON: {exc.msg}")]) from None
    except RecursionError:
        raise SpecError([Problem(where, f"{role} is nested too deeply to be a streamtune file")]) from None
    except _DuplicateKey:
        found = _first_duplicate(text)
        if found is None:
            raise SpecError([Problem(where, "a JSON object repeats a key; every key may appear once")]) from None
        offset, key, first, parent = found
        first_line, first_col = _position(text, first)
        shown = key if len(key) <= 40 else key[:37] + "..."
        inside = f" in {_dotted(parent)}" if parent else ""
        raise SpecError(
            [Problem(Location(file, *_position(text, offset)), f"duplicate key {shown!r}{inside} (first at {first_line}:{first_col}); every key may appear once in an object")]
        ) from None
    except _HugeInteger:
        huge = _first_huge_integer(text)
        if huge is None:
            raise SpecError([Problem(where, f"an integer is out of range (at most {MAX_JSON_INT_DIGITS} digits)")]) from None
        offset, token, path = huge
        at = f" ({_dotted(path)})" if path else ""
        raise SpecError(
            [Problem(Location(file, *_position(text, offset)), f"an integer of {len(token.lstrip('-'))} digits{at} is out of range (at most {MAX_JSON_INT_DIGITS} digits)")]
        ) from None
    except ValueError as exc:  # e.g. Python's own limit on integer digits
        raise SpecError([Problem(where, f"invalid JSON: {exc}")]) from None


def read_json_file(path: str | Path, role: str = "JSON file") -> Any:
    """Parse a JSON file; every failure is a SpecError naming the file (and line:col where there is one).

    `role` says what the file is for ("baseline", "tuning trace") in the messages. Strict: see read_json_text.
    """
    path = Path(path)
    return read_json_text(read_text_bounded(path, role), str(path), role)


def locate_json_path(path: str | Path, json_path: tuple[Any, ...] | list[Any]) -> Location:
    """file:line:col of the value at `json_path` (keys and list indices) in a JSON file; the file alone when
    the file cannot be read again or has no such value. For errors found after parsing (a model's checks)."""
    file = str(path)
    target = tuple(json_path)
    try:
        text = read_text_bounded(path)
    except SpecError:
        return Location(file)
    best: tuple[int, int] | None = None
    for kind, at, offset, _ in _json_events(text):
        if kind == "value" and at == target:
            return Location(file, *_position(text, offset))
        if kind == "value" and target[: len(at)] == at and (best is None or len(at) > best[0]):
            best = (len(at), offset)  # the deepest enclosing value, if the exact one is missing
    return Location(file, *_position(text, best[1])) if best else Location(file)
