"""The on-disk history store: a folder of immutable Parquet parts, appended atomically, read with polars.

Layout (docs/history.md):

    DIR/history.json                      format marker and schema version
    DIR/parts/part-NNNNNN-TOKEN/runs.parquet
    DIR/parts/part-NNNNNN-TOKEN/rows.parquet

A part is written in full under a temporary name (`parts/.tmp-...`) and renamed into place in one step, so a
reader sees either the whole part or none of it; a writer killed half-way leaves only a temporary folder
(`.tmp-PID-...`), which readers ignore and the next writer removes once its process is gone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from streamtune_cli.errors import Location, Problem, SpecError, StreamtuneError
from streamtune_cli.history.schema import (
    ROWS_SCHEMA,
    RUNS_SCHEMA,
    SCHEMA_VERSION,
    TABLE_METADATA_KEY,
    VERSION_METADATA_KEY,
    schema_for,
)
from streamtune_cli.io import fsync_dir, process_alive, read_json_file, sweep_stale_temps, write_json_atomic

if TYPE_CHECKING:
    import polars as pl

__all__ = ["HistoryStore", "HistoryError", "read_json", "MANIFEST_NAME", "FORMAT_NAME"]

MANIFEST_NAME = "history.json"
FORMAT_NAME = "streamtune-history"
PARTS_DIR = "parts"
_TMP_PREFIX = ".tmp-"
_TABLES = ("runs", "rows")


class HistoryError(SpecError):
    """A history folder or one of its files cannot be used; the message names the file."""

    def __init__(self, path: str | Path, message: str):
        super().__init__([Problem(Location(str(path)), message)])

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> "HistoryError":
        """Several problems at their own positions (e.g. every bad value of a trace), as one error."""
        error = cls.__new__(cls)
        SpecError.__init__(error, problems)
        return error


def read_json(path: str | Path, role: str) -> Any:
    """io.read_json_file (named file, line:col, depth-safe), raising HistoryError like the rest of history."""
    try:
        return read_json_file(path, role)
    except HistoryError:
        raise
    except SpecError as exc:
        raise HistoryError.from_problems(exc.problems) from None


class HistoryStore:
    """One history folder. `create` makes a new one (or opens an existing one); `open` requires it to exist."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._known_good: set[Path] = set()

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | Path) -> "HistoryStore":
        """Open an existing history; a missing folder, a foreign folder or a newer schema version raise."""
        store = cls(root)
        store._check_manifest()
        return store

    @classmethod
    def create(cls, root: str | Path) -> "HistoryStore":
        """Open the history at `root`, creating an empty one when the folder is missing or empty."""
        store = cls(root)
        path = store.root
        if path.exists() and not path.is_dir():
            raise HistoryError(path, "exists and is not a folder; a history is a folder of Parquet parts")
        manifest = path / MANIFEST_NAME
        sweep_stale_temps(manifest)
        if not manifest.exists():
            if path.exists() and any(p for p in path.iterdir() if not p.name.startswith(".")):
                raise HistoryError(path, f"folder is not empty and has no {MANIFEST_NAME}; refusing to write a history into it")
            path.mkdir(parents=True, exist_ok=True)
            write_json_atomic(manifest, {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION})
        (path / PARTS_DIR).mkdir(exist_ok=True)
        store._check_manifest()
        return store

    def _check_manifest(self) -> None:
        path = self.root
        if not path.exists():
            raise HistoryError(path, "no such history folder")
        if not path.is_dir():
            raise HistoryError(path, "is not a folder; a history is a folder of Parquet parts with a history.json")
        manifest = path / MANIFEST_NAME
        if not manifest.is_file():
            raise HistoryError(
                path, f"not a streamtune history (no {MANIFEST_NAME}); create one with `streamtune history generate` or `history add --out`"
            )
        data = read_json(manifest, "history manifest")
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise HistoryError(manifest, f"not a streamtune history manifest (expected format {FORMAT_NAME!r})")
        _check_version(manifest, data.get("schema_version"))

    # -- parts -------------------------------------------------------------------------------------------

    @property
    def parts_dir(self) -> Path:
        return self.root / PARTS_DIR

    def parts(self) -> list[Path]:
        """Committed parts in append order; temporary folders of interrupted writers are not parts."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(p for p in self.parts_dir.iterdir() if p.is_dir() and p.name.startswith("part-"))

    def files(self, table: str) -> list[Path]:
        """The Parquet files of one table (`runs` or `rows`), each checked for schema version and columns."""
        if table not in _TABLES:
            raise ValueError(f"unknown history table {table!r}")
        paths = [part / f"{table}.parquet" for part in self.parts()]
        for path in paths:
            self._check_file(path, table)
        return paths

    def _check_file(self, path: Path, table: str) -> None:
        if path in self._known_good:
            return
        if not path.is_file():
            raise HistoryError(path, f"missing: every part must hold {table}.parquet")
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as exc:
            raise HistoryError(path, f"not a readable Parquet file: {exc}") from None
        meta = schema.metadata or {}
        raw = meta.get(VERSION_METADATA_KEY)
        if raw is None:
            raise HistoryError(path, "has no streamtune history schema version; not written by streamtune")
        try:
            version = int(raw.decode())
        except ValueError:
            raise HistoryError(path, f"has an unreadable schema version {raw!r}") from None
        _check_version(path, version)
        if meta.get(TABLE_METADATA_KEY, table.encode()) != table.encode():
            raise HistoryError(path, f"holds the {meta[TABLE_METADATA_KEY].decode()!r} table, expected {table!r}")
        expected = RUNS_SCHEMA if table == "runs" else ROWS_SCHEMA
        found = {f.name: f.type for f in schema}
        problems = [
            f"{f.name} ({'missing' if f.name not in found else f'{found[f.name]}, expected {f.type}'})"
            for f in expected
            if found.get(f.name) != f.type
        ]
        if problems:
            raise HistoryError(path, f"columns do not match history schema v{SCHEMA_VERSION}: {', '.join(problems)}")
        self._known_good.add(path)

    # -- writing -----------------------------------------------------------------------------------------

    def append(self, runs: pa.Table, rows: pa.Table, *, check_duplicates: bool = True) -> Path:
        """Add complete runs (their `runs` rows and all their window rows) as one new part, atomically.

        Every row must belong to a run of this append, and run ids must be new to the store.
        """
        runs = _conform(runs, "runs")
        rows = _conform(rows, "rows")
        run_ids = runs.column("run_id").to_pylist()
        if len(set(run_ids)) != len(run_ids):
            raise ValueError("append: duplicate run_id within one append")
        orphans = set(rows.column("run_id").unique().to_pylist()) - set(run_ids)
        if orphans:
            raise ValueError(f"append: rows for runs not in this append: {sorted(orphans)[:5]}")
        if check_duplicates:
            existing = self.run_ids() & set(run_ids)
            if existing:
                raise StreamtuneError(f"{self.root}: runs already in this history: {sorted(existing)[:5]}")

        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.remove_stale_temporaries()
        token = hashlib.sha256("\n".join(run_ids).encode()).hexdigest()[:12]
        tmp = self.parts_dir / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            for name, table in (("rows", rows), ("runs", runs)):
                _write_parquet(table, tmp / f"{name}.parquet")
            fsync_dir(tmp)
            final = self._commit(tmp, token)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporary part folders whose writer process no longer exists (killed with -9); returns them."""
        removed = []
        if not self.parts_dir.is_dir():
            return removed
        for entry in self.parts_dir.iterdir():
            if not entry.name.startswith(_TMP_PREFIX):
                continue
            pid_text = entry.name[len(_TMP_PREFIX) :].split("-", 1)[0]
            if not pid_text.isdigit() or int(pid_text) == os.getpid() or process_alive(int(pid_text)):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        return removed

    def _commit(self, tmp: Path, token: str) -> Path:
        # Sequence numbers keep parts in append order; a concurrent writer may take the same number, and
        # renaming onto an existing folder fails, so we retry with the next number.
        index = len(self.parts())
        for _ in range(1000):
            final = self.parts_dir / f"part-{index:06d}-{token}"
            if not final.exists():
                try:
                    os.rename(tmp, final)
                except OSError:
                    index += 1
                    continue
                fsync_dir(self.parts_dir)
                return final
            index += 1
        raise StreamtuneError(f"{self.parts_dir}: could not name a new part")

    # -- reading -----------------------------------------------------------------------------------------

    def scan(self, table: str) -> "pl.LazyFrame":
        """A polars LazyFrame over every committed part of `runs` or `rows` (empty frame when none)."""
        import polars as pl

        paths = self.files(table)
        if not paths:
            return pl.from_arrow(schema_for(table).empty_table()).lazy()  # type: ignore[union-attr]
        return pl.scan_parquet([str(p) for p in paths])

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """One table as Arrow, all parts concatenated in append order."""
        paths = self.files(table)
        schema = schema_for(table)
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
        if not paths:
            return schema.empty_table()
        with self.reading():
            tables = [pq.read_table(p, columns=columns).cast(schema) for p in paths]
        return pa.concat_tables(tables)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around any read of the parts: a part whose footer is valid but whose pages are garbled (which only
        decoding reveals, deep inside polars or pyarrow) becomes a HistoryError naming that part's file."""
        try:
            yield
        except HistoryError:
            raise
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException:  # polars reports some corruptions as a Rust panic, which is a BaseException
            culprit = self.find_corrupt_file()
            if culprit is None:
                raise
            path, why = culprit
            raise HistoryError(path, f"corrupt Parquet data ({why}); restore this part from a backup or delete its folder") from None

    def find_corrupt_file(self) -> tuple[Path, str] | None:
        """The first part file that does not decode completely (with pyarrow and with polars), and why."""
        import polars as pl

        for table in _TABLES:
            for path in self.files(table):
                try:
                    pq.read_table(path).validate(full=True)
                    pl.read_parquet(path)
                except (KeyboardInterrupt, SystemExit, GeneratorExit):
                    raise
                except BaseException as exc:
                    return path, _short(exc)
        return None

    def part_file_of(self, run_id: str, table: str = "runs") -> Path | None:
        """The file of `table` that holds a run (for errors about one run's stored data)."""
        for path in self.files(table):
            try:
                ids = pq.read_table(path, columns=["run_id"]).column("run_id").to_pylist()
            except (OSError, pa.ArrowException):
                continue
            if run_id in ids:
                return path
        return None

    def run_ids(self) -> set[str]:
        return set(self.read("runs", ["run_id"]).column("run_id").to_pylist())

    def size_bytes(self) -> int:
        """Bytes on disk of the manifest and all committed parts (temporary folders not counted)."""
        total = (self.root / MANIFEST_NAME).stat().st_size
        for part in self.parts():
            total += sum(f.stat().st_size for f in part.iterdir() if f.is_file())
        return total


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _check_version(path: Path, version: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise HistoryError(path, f"invalid history schema version {version!r}")
    if version > SCHEMA_VERSION:
        raise HistoryError(
            path,
            f"history schema version {version} is newer than this streamtune supports ({SCHEMA_VERSION}); upgrade streamtune",
        )


def _conform(table: pa.Table, name: str) -> pa.Table:
    """Cast to the table's schema (columns in order, version metadata) and refuse nulls where none are allowed."""
    schema = schema_for(name)
    missing = [f.name for f in schema if f.name not in table.column_names]
    extra = [c for c in table.column_names if c not in schema.names]
    if missing or extra:
        raise ValueError(f"{name} table does not match the history schema: missing {missing}, unknown {extra}")
    table = table.select(schema.names).cast(schema)
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"{name} table: column {field.name} has nulls")
    return table


def _write_parquet(table: pa.Table, path: Path) -> None:
    # zstd: the spec JSON and repeated ids compress well; statistics let polars skip parts by run_id.
    pq.write_table(table, path, compression="zstd", compression_level=9, write_statistics=True)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
