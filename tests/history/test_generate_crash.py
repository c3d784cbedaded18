"""`history generate` under kill -9: no torn output at any moment, and re-running finishes the work.

The kills land at seeded random moments; whatever the timing, every assertion below must hold (a history
is whole parts only, each part one block of runs; the re-run yields exactly the uninterrupted history).
Pool workers end with their parent.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamtune_cli.history.generate import generate_history, run_id_for
from streamtune_cli.history.store import HistoryStore

SEED = 7
JOBS = 24
RUNS_PER_PART = 3
KILLS = 22
GENERATE = (
    "import sys\nfrom streamtune_cli.history.generate import generate_history\n"
    f"generate_history(sys.argv[1], jobs={JOBS}, seed={SEED}, workers=1, runs_per_part={RUNS_PER_PART})\n"
)
EXPECTED = {run_id_for(SEED, i) for i in range(JOBS)}
BLOCKS = [{run_id_for(SEED, i) for i in range(b, min(b + RUNS_PER_PART, JOBS))} for b in range(0, JOBS, RUNS_PER_PART)]


def sorted_tables(out: Path) -> tuple[pa.Table, pa.Table]:
    store = HistoryStore.open(out)
    runs = store.read("runs").sort_by("run_id")
    rows = store.read("rows").sort_by([("run_id", "ascending"), ("window", "ascending"), ("operator", "ascending")])
    return runs, rows


def assert_whole(out: Path) -> set[str]:
    """What a reader sees after a kill: whole parts, each exactly one block of runs with all its rows."""
    if not (out / "history.json").exists():
        assert not (out / "parts").exists() or not any(p.name.startswith("part-") for p in (out / "parts").iterdir())
        return set()
    store = HistoryStore.open(out)
    assert store.find_corrupt_file() is None
    seen: set[str] = set()
    for part in store.parts():
        ids = set(pq.read_table(part / "runs.parquet", columns=["run_id"]).column("run_id").to_pylist())
        assert ids in BLOCKS, (part, ids)
        assert not ids & seen, "a run written twice"
        seen |= ids
        rows = pq.read_table(part / "rows.parquet", columns=["run_id"]).column("run_id").to_pylist()
        assert set(rows) == ids  # every run of the part has its rows, and no row is an orphan
    return seen


def test_kill_9_at_random_moments_leaves_whole_parts_and_a_rerun_completes(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    generate_history(reference, jobs=JOBS, seed=SEED, workers=1, runs_per_part=RUNS_PER_PART)
    rng = random.Random(20261206)
    folders = [tmp_path / "h0"]
    killed = 0
    while killed < KILLS:
        out = folders[-1]
        process = subprocess.Popen([sys.executable, "-c", GENERATE, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, 2.5))
        process.kill()
        _, stderr = process.communicate()
        assert process.returncode in (0, -signal.SIGKILL), stderr.decode()
        if process.returncode == -signal.SIGKILL:
            killed += 1
        done = assert_whole(out)
        if done == EXPECTED:  # finished before the kill: start a new history so later kills land mid-work
            folders.append(tmp_path / f"h{len(folders)}")
    expected_runs, expected_rows = sorted_tables(reference)
    for out in folders:
        # The same command again, uninterrupted, finishes the work: the result is the uninterrupted history.
        finished = subprocess.run([sys.executable, "-c", GENERATE, str(out)], capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        assert assert_whole(out) == EXPECTED
        runs, rows = sorted_tables(out)
        assert runs.equals(expected_runs) and rows.equals(expected_rows)
        leftovers = [p.name for p in (out / "parts").iterdir() if not p.name.startswith("part-")]
        leftovers += [p.name for p in out.iterdir() if p.name.startswith(".")]
        assert leftovers == [], leftovers  # temp folders and files of killed writers are gone
    # and once complete, running it again writes nothing
    before = HistoryStore.open(folders[0]).parts()
    summary = generate_history(folders[0], jobs=JOBS, seed=SEED, workers=1, runs_per_part=RUNS_PER_PART)
    assert (summary.runs, summary.already_present) == (0, JOBS) and HistoryStore.open(folders[0]).parts() == before


def _state(pid: int) -> str | None:
    """The process state letter from /proc (Z for a zombie), None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A worker that would otherwise wait forever (no work, no pipe to notice) ends with its parent."""
    script = textwrap.dedent(
        """
        import multiprocessing, os, threading
        from streamtune_cli.history.generate import _die_with_parent

        def worker(parent, ready):
            _die_with_parent(parent)
            ready.set()
            threading.Event().wait()  # forever

        if __name__ == "__main__":
            ctx = multiprocessing.get_context("fork")
            ready = ctx.Event()
            child = ctx.Process(target=worker, args=(os.getpid(), ready))
            child.start()
            ready.wait()
            print(child.pid, flush=True)
            threading.Event().wait()
        """
    )
    path = tmp_path / "parent.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _state(child) not in (None, "Z")
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60  # a bound for a loaded machine, not a measurement: death is immediate
    while _state(child) not in (None, "Z"):
        assert time.monotonic() < deadline, f"worker {child} outlived its parent"
        time.sleep(0.05)
