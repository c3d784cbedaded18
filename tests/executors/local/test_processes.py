"""The local executor's processes: started and ended by PID, never left behind, failures in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamtune_cli.errors import ExecutorError
from streamtune_cli.executors.local.executor import LocalExecutor
from streamtune_cli.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[3]
Q1 = ROOT / "configs" / "nexmark" / "q1.yaml"


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                continue
            if ppid == pid:
                found.add(int(entry))
    return found


def _wait_gone(pids: set[int], timeout_s: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = {pid for pid in pids if _alive(pid)}
        if not left:
            return set()
        time.sleep(0.05)
    return {pid for pid in pids if _alive(pid)}


def test_no_process_outlives_a_normal_close() -> None:
    spec = load_spec(Q1)
    with LocalExecutor(window_s=0.3, warmup_s=0.1, rate_rps=50_000.0) as executor:
        executor.deploy(spec, spec.parallelism)
        executor.observe()
        pids = executor.pids
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)  # q1 fuses into one chain, 2 instances
    assert _wait_gone(pids) == set()


def test_an_operator_error_ends_every_process_and_reports_one_line() -> None:
    text = Q1.read_text().replace("price: price * 0.908", "price: CAST(extra AS INTEGER)")
    spec = load_spec_text(text, file="broken-q1.yaml")
    executor = LocalExecutor(window_s=2.0, warmup_s=0.5, rate_rps=50_000.0, fusion=False)
    with pytest.raises(ExecutorError) as info:
        # The first record reaches to_euro within a window or a few on a busy machine, or already while
        # deploy() waits for the job to start: the error may surface in either.
        executor.deploy(spec, spec.parallelism)
        for _ in range(30):
            executor.observe()
    pids = executor.pids  # every process it ever started
    message = str(info.value)
    assert "\n" not in message and "to_euro" in message and "operator failed" in message
    assert _wait_gone(pids) == set()
    executor.close()  # closing after the failure is safe


def _start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamtune_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "true"},
    )


def _wait_for_workers(proc: subprocess.Popen, count: int, timeout_s: float = 60.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # multiprocessing starts a resource tracker too; the workers are the spawned children
        workers = {pid for pid in _children(proc.pid) if "spawn_main" in _cmdline(pid)}
        if len(workers) >= count:
            return workers
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the workers did not start in {timeout_s} s")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_sigint_ends_every_process_and_says_so() -> None:
    proc = _start_cli("run", str(Q1), "--duration", "60", "--rate", "50000")
    workers = _wait_for_workers(proc, 2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _wait_gone(workers) == set()


def test_workers_end_when_the_coordinator_is_killed() -> None:
    proc = _start_cli("run", str(Q1), "--duration", "60", "--rate", "50000")
    workers = _wait_for_workers(proc, 2)
    proc.kill()  # no cleanup can run: the workers notice their parent is gone
    proc.communicate(timeout=30)
    assert _wait_gone(workers, timeout_s=15) == set()


def test_a_script_read_from_stdin_can_run_a_job() -> None:
    # spawn re-imports the caller's main module in every worker unless the executor hides it; a script
    # piped to `python -` has no file to re-import, and its workers used to die at start.
    script = (
        "from streamtune_cli.executors.local.executor import LocalExecutor\n"
        "from streamtune_cli.spec import load_spec\n"
        f"spec = load_spec({str(Q1)!r})\n"
        "with LocalExecutor(window_s=0.3, warmup_s=0.1, rate_rps=50_000.0, cores=1) as ex:\n"
        "    ex.deploy(spec, spec.parallelism)\n"
        "    for _ in range(50):  # a busy machine may start the workers later than one short window\n"
        "        obs = ex.observe()\n"
        "        if obs.achieved_rate_rps > 0:\n"
        "            break\n"
        "    print('ingested', obs.achieved_rate_rps > 0, sorted(obs.operators))\n"
        "    import os\n"
        "    print('pinned', {len(os.sched_getaffinity(pid)) for pid in ex.pids})\n"
        "    print('machine cores', obs.machine_cores)\n"
    )
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ingested True ['bids', 'sink', 'to_euro']" in done.stdout
    assert "pinned {1}" in done.stdout  # cores=1: every process on one CPU
    assert "machine cores 1" in done.stdout  # and each window says the job had that one CPU to run on
