"""The record of accepted SQL expressions (spec/sql_accepted.py): it saves sqlglot's import on an unchanged
spec, never changes a verdict, and never fails a command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamtune_cli.spec import sql_accepted
from streamtune_cli.spec.loader import load_spec_text
from streamtune_cli.spec.sql_accepted import RECORD_NAME, AcceptedExpressions
from streamtune_cli.errors import SpecError

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
name: accepted
workload: {rate_rps: 1000}
operators:
  - {id: src, kind: source}
  - {id: f, kind: filter, predicate: "DATE_FORMAT(ts, 'HH:mm') > '10:00' AND price > 3"}
  - {id: agg, kind: aggregate, key: [k], aggregates: {n: "COUNT(*)"}}
  - {id: sink, kind: sink}
edges:
  - {src: src, dst: f}
  - {src: f, dst: agg, partitioning: hash, key: [k]}
  - {src: agg, dst: sink}
"""


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STREAMTUNE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STREAMTUNE_NO_CACHE", raising=False)
    return tmp_path / "cache"


def imports_sqlglot(spec_file: Path, cache_dir: Path, *, no_cache: bool = False) -> tuple[bool, str]:
    """Run `validate` in a fresh interpreter; (was sqlglot imported, its output)."""
    code = (
        "import sys\nfrom streamtune_cli.cli.app import main\n"
        f"try:\n    main(['validate', {str(spec_file)!r}])\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print('SQLGLOT=' + str('sqlglot' in sys.modules)); print('EXIT=' + str(code))"
    )
    env = {k: v for k, v in os.environ.items() if k != "STREAMTUNE_NO_CACHE"}
    env["STREAMTUNE_CACHE_DIR"] = str(cache_dir)
    if no_cache:
        env["STREAMTUNE_NO_CACHE"] = "1"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=False)
    return "SQLGLOT=True" in result.stdout, result.stdout + result.stderr


def test_a_second_validate_of_an_unchanged_spec_imports_no_sqlglot(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC)
    cache_dir = tmp_path / "cache"
    first, out1 = imports_sqlglot(spec, cache_dir)
    second, out2 = imports_sqlglot(spec, cache_dir)
    assert first and not second
    assert "EXIT=0" in out1 and "EXIT=0" in out2
    # Turned off: every run checks with sqlglot again.
    off, out3 = imports_sqlglot(spec, cache_dir, no_cache=True)
    assert off and "EXIT=0" in out3
    # An edited expression is new: checked again.
    spec.write_text(SPEC.replace("price > 3", "price > 4"))
    edited, _ = imports_sqlglot(spec, cache_dir)
    assert edited


def test_rejected_expressions_are_never_recorded(cache: Path) -> None:
    bad = SPEC.replace("price > 3", "NO_SUCH_FN(price) > 3")
    for _ in range(2):
        with pytest.raises(SpecError) as info:
            load_spec_text(bad, "bad.yaml")
        assert "NO_SUCH_FN" in str(info.value) and "bad.yaml:5:" in str(info.value)
    record = AcceptedExpressions.load()
    sql = "DATE_FORMAT(ts, 'HH:mm') > '10:00' AND NO_SUCH_FN(price) > 3"
    assert record.key(sql, False) not in record
    # The valid aggregate of the same spec was recorded, the bad predicate not.
    assert record.key("COUNT(*)", True) in record


def test_the_place_is_part_of_the_key(cache: Path) -> None:
    load_spec_text(SPEC, "ok.yaml")  # records COUNT(*) as an aggregate
    misplaced = SPEC.replace("price > 3", "COUNT(*) > 3")
    with pytest.raises(SpecError, match="aggregate"):
        load_spec_text(misplaced, "misplaced.yaml")


def test_a_changed_checker_starts_afresh(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_spec_text(SPEC, "ok.yaml")
    record = AcceptedExpressions.load()
    key = record.key("COUNT(*)", True)
    assert key in record
    monkeypatch.setattr(sql_accepted, "_checker_fingerprint", lambda: b"another checker")
    assert AcceptedExpressions.load().key("COUNT(*)", True) != key
    assert AcceptedExpressions.load().key("COUNT(*)", True) not in AcceptedExpressions.load()


@pytest.mark.parametrize("damage", ["garbage", "directory", "dangling_link", "huge", "unwritable_dir"])
def test_a_damaged_or_unusable_record_is_ignored(cache: Path, damage: str) -> None:
    cache.mkdir(parents=True)
    path = cache / RECORD_NAME
    if damage == "garbage":
        path.write_bytes(b"\xff\xfe not a digest\n" + b"0" * 31 + b"\n")
    elif damage == "directory":
        path.mkdir()
    elif damage == "dangling_link":
        path.symlink_to(cache / "nowhere")
    elif damage == "huge":
        path.write_text(("f" * 32 + "\n") * 40_000)
    elif damage == "unwritable_dir":
        cache.chmod(0o500)
    try:
        assert load_spec_text(SPEC, "ok.yaml").name == "accepted"
        with pytest.raises(SpecError, match="NO_SUCH_FN"):
            load_spec_text(SPEC.replace("price > 3", "NO_SUCH_FN(price) > 3"), "bad.yaml")
        if damage == "dangling_link":
            assert not (cache / "nowhere").exists()  # never written through a link
        if damage in ("garbage", "huge"):
            # Rewritten or appended with real digests: the next load finds the accepted expressions.
            assert AcceptedExpressions.load().key("COUNT(*)", True) in AcceptedExpressions.load()
        if damage == "huge":
            assert path.stat().st_size < 40_000 * 33
    finally:
        cache.chmod(0o700)
