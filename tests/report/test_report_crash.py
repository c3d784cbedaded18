"""kill -9 at random moments never leaves a mixed or torn report set, and a re-run completes it.

The property is checked after every kill, whatever moment the kill landed at: the files of the set that
are present all come from one run and are whole (byte-identical to that run's complete file), and when
manifest.json is present it matches them. The random delays only spread the kills over a run; no assertion
depends on where they land.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamtune_cli.report.trace_report import (
    MANIFEST_NAME,
    REPORT_FILES,
    read_report_set,
    write_report_set,
    write_trace_reports,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "synthetic" / "linear_chain.yaml"
SET_NAMES = sorted([*REPORT_FILES, MANIFEST_NAME])

def assert_never_mixed(out: Path, runs: list[dict[str, bytes]]) -> None:
    """The set files in `out` are whole files of ONE run, and a manifest, if present, vouches for all of them."""
    present = {name: (out / name).read_bytes() for name in REPORT_FILES if (out / name).exists()}
    origins = []
    for name, data in present.items():
        matching = {i for i, run in enumerate(runs) if run[name] == data}
        assert matching, f"{name} is torn: it is no run's complete file"
        origins.append(matching)
    assert not origins or set.intersection(*origins), f"files of different runs side by side: {origins}"
    if (out / MANIFEST_NAME).exists():
        assert read_report_set(out) in runs
        assert sorted(present) == sorted(REPORT_FILES)


def _child_env() -> dict[str, str]:
    return {**os.environ, "CI": "true", "PYTHONDONTWRITEBYTECODE": "1"}


def _writer_loop(out: Path, runs: list[dict[str, bytes]], ready: int) -> None:
    """In a forked child: write the runs' sets in turn, for ever; one byte on `ready` once the first is in
    place, so every kill after that lands in a loop that is (almost) all set writing."""
    i = 0
    while True:
        write_report_set(out, runs[i % len(runs)], set_id=f"run{i % len(runs)}")
        if i == 0:
            os.write(ready, b"r")
        i += 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to start a writer per kill without re-importing")
def test_kill_during_set_writing(tmp_path: Path, failed_trace, good_trace):
    runs = []
    for name, (trace, oracle) in (("a", failed_trace), ("b", good_trace)):
        write_trace_reports(trace, tmp_path / name, oracle=oracle)
        runs.append({n: (tmp_path / name / n).read_bytes() for n in REPORT_FILES})
    out = tmp_path / "out"
    rng = random.Random(20261206)
    for _ in range(25):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            try:
                os.close(read_end)
                _writer_loop(out, runs, write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        try:
            assert os.read(read_end, 1) == b"r"
            time.sleep(rng.uniform(0.0, 0.02))
        finally:
            os.kill(pid, signal.SIGKILL)  # no handler, no cleanup
            _, status = os.waitpid(pid, 0)
            os.close(read_end)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert_never_mixed(out, runs)
    # the re-run: whatever the last kill left, the next write completes the set and sweeps the leftovers
    write_trace_reports(good_trace[0], out, oracle=good_trace[1])
    assert read_report_set(out) == runs[1]
    assert sorted(os.listdir(out)) == SET_NAMES


def _tune(out: Path, seed: int) -> list[str]:
    return [
        sys.executable, "-m", "streamtune_cli", "tune", str(CONFIG), "--executor", "sim", "--tuner", "ds2",
        "--seed", str(seed), "--report", str(out),
    ]


@pytest.mark.slow
def test_kill_tune_with_report(tmp_path: Path):
    """`streamtune tune --report DIR` killed at random moments, alternating between two seeds (two different
    runs, each deterministic), then run again to completion."""
    runs = []
    for seed in (1, 2):
        done = subprocess.run(_tune(tmp_path / f"ref{seed}", seed), env=_child_env(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        runs.append(read_report_set(tmp_path / f"ref{seed}"))
    assert runs[0] != runs[1]
    out = tmp_path / "out"
    first = subprocess.run(_tune(out, 1), env=_child_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    rng = random.Random(15)
    kills = 0
    for attempt in range(20):
        child = subprocess.Popen(_tune(out, 2 - attempt % 2), env=_child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # a whole run takes about 1.5 s here: the delays spread kills over start-up, tuning and reporting
            time.sleep(rng.uniform(0.0, 1.8))
        finally:
            child.kill()
            child.wait()
        kills += child.returncode == -9  # a run that finished first is fine too: its set is complete
        assert_never_mixed(out, runs)
        assert not (out / "partial-trace.json").exists()
    again = subprocess.run(_tune(out, 2), env=_child_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert read_report_set(out) == runs[1]
    assert sorted(os.listdir(out)) == SET_NAMES
    assert kills >= 1  # at least the kills that landed before the run could end (the start-up alone outlasts many delays)
