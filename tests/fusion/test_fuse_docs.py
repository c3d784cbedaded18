"""docs/fusion.md's worked examples are real: every ```console block's `$ streamtune ...` command is run and
its output must match the block (100 columns). Regenerate after an intended change with:

    .venv/bin/python tests/fusion/test_fuse_docs.py --update
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fusion.md"
# A file the examples read: an HTML comment naming it, right before a ```yaml block.
FILE_BLOCK = re.compile(r"<!-- file: (?P<name>[\w.\-/]+) -->\n```yaml\n(?P<body>.*?)```", re.DOTALL)
CONSOLE_BLOCK = re.compile(r"```console\n\$ (?P<command>[^\n]+)\n(?P<output>.*?)```", re.DOTALL)


def _streamtune() -> str:
    return str(Path(sys.executable).with_name("streamtune"))


def _run(command: str, folder: Path) -> str:
    args = shlex.split(command)
    assert args[0] == "streamtune", command
    env = {**os.environ, "COLUMNS": "100", "CI": "true"}
    result = subprocess.run([_streamtune(), *args[1:]], capture_output=True, text=True, cwd=folder, env=env)
    return "\n".join(line.rstrip() for line in (result.stdout + result.stderr).rstrip().splitlines())


def _workspace(text: str, folder: Path) -> None:
    (folder / "configs").symlink_to(ROOT / "configs")
    for match in FILE_BLOCK.finditer(text):
        target = folder / match["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(match["body"])


def _examples(text: str) -> list[tuple[str, str]]:
    return [(m["command"], m["output"].rstrip()) for m in CONSOLE_BLOCK.finditer(text)]


def test_doc_examples_match_the_tool() -> None:
    text = DOC.read_text()
    examples = _examples(text)
    assert len(examples) >= 5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _workspace(text, folder)
        for command, expected in examples:
            got = _run(command, folder)
            assert got == "\n".join(line.rstrip() for line in expected.splitlines()), (
                f"docs/fusion.md is out of date for `{command}`; run this file with --update"
            )


def _update() -> None:
    text = DOC.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _workspace(text, folder)

        def replace(match: re.Match) -> str:
            return f"```console\n$ {match['command']}\n{_run(match['command'], folder)}\n```"

        DOC.write_text(CONSOLE_BLOCK.sub(replace, text))


if __name__ == "__main__":
    if "--update" in sys.argv:
        _update()
    else:
        sys.exit(pytest.main([__file__, "-q"]))
