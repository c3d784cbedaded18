"""The README and docs name only files that exist in the repo (placeholders are written with <, * or {})."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"\b(?:configs|docs|benchmarks|scripts|streamtune_cli|tests|sample_histories)/[A-Za-z0-9_./*<>{}-]+")


def test_every_repo_path_named_in_the_docs_exists() -> None:
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line_no, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in PATH.finditer(line):
                path = match.group(0).rstrip(".,:;)")
                if any(c in path for c in "<*{"):
                    continue  # a placeholder or a glob, not a file
                if not (ROOT / path).exists():
                    missing.append(f"{doc.relative_to(ROOT)}:{line_no}: {path}")
    assert not missing, "\n".join(missing)
