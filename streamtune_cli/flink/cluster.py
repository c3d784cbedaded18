"""A local standalone Flink cluster: a conf of our own, one job manager and one task manager, by PID.

`up` writes the conf (everything on 127.0.0.1, the adaptive scheduler so that vertices rescale one by one,
checkpointing on so that a rescale restores state), starts both JVMs in the foreground mode of Flink's
scripts as children in their own sessions, records their PIDs in `cluster.json`, and waits until the task
manager has registered its slots. `down` ends exactly those PIDs (TERM, then KILL) after checking that each
still is the JVM we started. Nothing else is ever killed.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from streamtune_cli.errors import ExecutorError, UsageError
from streamtune_cli.flink.install import FlinkInstall, cache_dir, require_java
from streamtune_cli.flink.rest import FlinkRest

__all__ = ["ClusterSettings", "ClusterState", "cluster_up", "cluster_down", "cluster_status", "submit_sql", "RUNNER_ENTRY"]

RUNNER_ENTRY = "StreamtuneSqlRunner"
_NAME = "flink"


@dataclass(frozen=True)
class ClusterSettings:
    rest_port: int = 8081
    slots: int = 8
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "2560m"
    checkpoint_interval_s: float = 5.0
    state_dir: Path | None = None  # default: cache_dir()/cluster

    def folder(self) -> Path:
        return Path(self.state_dir) if self.state_dir is not None else cache_dir() / "cluster"


@dataclass
class ClusterState:
    """What `cluster.json` records about a cluster we started."""

    rest_url: str
    jobmanager_pid: int
    taskmanager_pid: int
    conf_dir: str
    log_dir: str
    flink_home: str
    started_at: float

    @property
    def pids(self) -> dict[str, int]:
        return {"jobmanager": self.jobmanager_pid, "taskmanager": self.taskmanager_pid}


def _state_file(folder: Path) -> Path:
    return folder / "cluster.json"


def load_state(folder: Path) -> ClusterState | None:
    path = _state_file(folder)
    if not path.exists():
        return None
    try:
        return ClusterState(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise UsageError(f"{path}: not a cluster state file ({exc}); remove it if no cluster is running") from None


def _ours(pid: int, conf_dir: str) -> bool:
    """True while `pid` is alive and is a JVM started with our conf dir (so a reused PID is never killed)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return "java" in cmdline and conf_dir in cmdline


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _java_opts(home: Path) -> str:
    """The stock conf's `env.java.opts.all` (the --add-opens a JDK 17 needs), nested or flat in its YAML."""
    import yaml

    stock = home / "conf" / "config.yaml"
    try:
        data = yaml.safe_load(stock.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    if "env.java.opts.all" in data:
        return str(data["env.java.opts.all"])
    node: Any = data
    for part in ("env", "java", "opts", "all"):
        node = node.get(part) if isinstance(node, dict) else None
    return str(node) if node else ""


def write_conf(home: Path, folder: Path, settings: ClusterSettings) -> Path:
    conf = folder / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    checkpoints = (folder / "checkpoints").resolve()
    values = {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.bind-host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.host": "127.0.0.1",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(settings.rest_port),
        "jobmanager.rpc.port": str(_free_port()),  # must be a fixed port (0 is refused); the others may be 0
        "taskmanager.rpc.port": "0",
        "blob.server.port": "0",
        "taskmanager.data.port": "0",
        "jobmanager.memory.process.size": settings.jobmanager_memory,
        "taskmanager.memory.process.size": settings.taskmanager_memory,
        "taskmanager.numberOfTaskSlots": str(settings.slots),
        "parallelism.default": "1",
        "jobmanager.scheduler": "adaptive",
        "jobmanager.adaptive-scheduler.resource-stabilization-timeout": "2s",
        "jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout": "2s",
        "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout": "2s",
        "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": "5s",
        "execution.checkpointing.interval": f"{settings.checkpoint_interval_s:g}s",
        "execution.checkpointing.dir": checkpoints.as_uri(),
        "state.checkpoints.dir": checkpoints.as_uri(),
        "metrics.fetcher.update-interval": "2000",
        "web.submit.enable": "true",
    }
    lines = [f"{key}: {json.dumps(value)}" for key, value in values.items()]
    opts = _java_opts(home)
    if opts:
        lines.append(f"env.java.opts.all: {json.dumps(opts)}")
    (conf / "config.yaml").write_text("# Written by `streamtune flink up`.\n" + "\n".join(lines) + "\n")
    (conf / "masters").write_text(f"127.0.0.1:{settings.rest_port}\n")
    (conf / "workers").write_text("127.0.0.1\n")
    for name in ("log4j.properties", "log4j-console.properties", "logback.xml", "logback-console.xml"):
        stock = home / "conf" / name
        if stock.exists():
            (conf / name).write_bytes(stock.read_bytes())
    return conf


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """One `flink up` or `flink down` at a time per state folder: two ups at once would both find no cluster
    and start two, and one state file would name only the second. The lock goes with the process."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another `streamtune flink up` or `down` is running on {folder}; wait for it to finish") from None
        yield


def cluster_up(
    settings: ClusterSettings = ClusterSettings(),
    install: FlinkInstall | None = None,
    *,
    timeout_s: float = 180.0,
    say: Callable[[str], None] = lambda _: None,
) -> ClusterState:
    """Start a cluster (installing Flink first if needed) and wait until its slots are registered."""
    with _exclusive(settings.folder()):
        return _cluster_up(settings, install, timeout_s, say)


def _cluster_up(
    settings: ClusterSettings, install: FlinkInstall | None, timeout_s: float, say: Callable[[str], None]
) -> ClusterState:
    folder = settings.folder()
    existing = load_state(folder)
    if existing is not None and any(_ours(pid, existing.conf_dir) for pid in existing.pids.values()):
        raise UsageError(f"a cluster started by streamtune is already running at {existing.rest_url} (`streamtune flink down` first)")
    if not _port_free(settings.rest_port):
        raise UsageError(f"port {settings.rest_port} on 127.0.0.1 is taken (another Flink?): choose another with --port")
    require_java("java")
    install = install or FlinkInstall.default()
    home = install.ensure(say)
    folder.mkdir(parents=True, exist_ok=True)
    conf = write_conf(home, folder, settings)
    logs = folder / "log"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, "FLINK_CONF_DIR": str(conf), "FLINK_LOG_DIR": str(logs), "FLINK_HOME": str(home)}
    started: dict[str, subprocess.Popen] = {}
    try:
        for role in ("jobmanager", "taskmanager"):
            out = open(logs / f"{role}.out", "ab")  # noqa: SIM115 - the child owns it
            started[role] = subprocess.Popen(
                ["bash", str(home / "bin" / f"{role}.sh"), "start-foreground"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=folder,
            )
            out.close()
        state = ClusterState(
            rest_url=f"http://127.0.0.1:{settings.rest_port}",
            jobmanager_pid=started["jobmanager"].pid,
            taskmanager_pid=started["taskmanager"].pid,
            conf_dir=str(conf),
            log_dir=str(logs),
            flink_home=str(home),
            started_at=time.time(),
        )
        tmp = _state_file(folder).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
        os.replace(tmp, _state_file(folder))
        say(f"started job manager (PID {state.jobmanager_pid}) and task manager (PID {state.taskmanager_pid}); waiting for slots ...")
        _wait_ready(state, started, settings.slots, timeout_s)
        return state
    except BaseException:
        # Our own children (still unreaped, so their PIDs cannot have been reused): end their sessions even
        # while they are still Flink's start script, before it has become the JVM.
        for process in started.values():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)
                try:
                    process.wait(timeout=5.0)
                    break
                except subprocess.TimeoutExpired:
                    continue
        raise


def _wait_ready(state: ClusterState, started: dict[str, subprocess.Popen], slots: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with FlinkRest(state.rest_url, attempts=1, timeout_s=2.0) as rest:
        while True:
            for role, process in started.items():
                if process.poll() is not None:
                    raise ExecutorError(_NAME, f"the {role} exited with code {process.returncode} at start: {_log_tail(state, role)}")
            try:
                overview = rest.overview()
                if overview.get("taskmanagers", 0) >= 1 and overview.get("slots-total", 0) >= slots:
                    return
            except ExecutorError:
                pass
            if time.monotonic() > deadline:
                raise ExecutorError(_NAME, f"the cluster was not ready within {timeout_s:g} s (logs: {state.log_dir})")
            time.sleep(0.5)


def _log_tail(state: ClusterState, role: str) -> str:
    logs = sorted(Path(state.log_dir).glob(f"*{role}*"))
    lines: list[str] = []
    for path in logs:
        lines += [line for line in path.read_text(errors="replace").splitlines() if "ERROR" in line or "Exception" in line]
    return (lines[-1].strip() if lines else f"see {state.log_dir}")[:300]


def _end(pid: int, conf_dir: str, grace_s: float = 15.0) -> bool:
    """TERM then KILL the process group of `pid` if it still is our JVM; True when it is gone."""
    if not _ours(pid, conf_dir):
        _reap(pid)
        return True
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            _reap(pid)
            if not _ours(pid, conf_dir):
                return True
            time.sleep(0.1)
    return not _ours(pid, conf_dir)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cluster_down(settings: ClusterSettings = ClusterSettings()) -> ClusterState | None:
    """Stop the cluster recorded in the state folder (by PID); None when there was none."""
    folder = settings.folder()
    if not folder.exists():
        return None
    with _exclusive(folder):
        return _cluster_down(folder)


def _cluster_down(folder: Path) -> ClusterState | None:
    state = load_state(folder)
    if state is None:
        return None
    left = [role for role, pid in state.pids.items() if not _end(pid, state.conf_dir)]
    if left:
        raise ExecutorError(_NAME, f"could not stop the {' and '.join(left)} (PIDs {[state.pids[r] for r in left]})")
    _state_file(folder).unlink(missing_ok=True)
    return state


def cluster_status(settings: ClusterSettings = ClusterSettings()) -> dict[str, Any]:
    """Whether our cluster's processes live and what its REST API says (jobs by state, slots)."""
    folder = settings.folder()
    state = load_state(folder)
    if state is None:
        return {"running": False, "state_dir": str(folder)}
    alive = {role: _ours(pid, state.conf_dir) for role, pid in state.pids.items()}
    report: dict[str, Any] = {"running": all(alive.values()), "processes": {r: {"pid": state.pids[r], "alive": a} for r, a in alive.items()},
                              "rest_url": state.rest_url, "state_dir": str(folder), "log_dir": state.log_dir}
    if any(alive.values()):
        try:
            with FlinkRest(state.rest_url, attempts=1, timeout_s=3.0) as rest:
                overview = rest.overview()
                report["slots_total"] = overview.get("slots-total")
                report["slots_available"] = overview.get("slots-available")
                report["jobs"] = [{"id": j["jid"], "name": j["name"], "state": j["state"]} for j in rest.jobs()]
        except ExecutorError as exc:
            report["rest_error"] = str(exc)
    return report


_DATAGEN = re.compile(r"('connector'\s*=\s*)'datagen'", re.IGNORECASE)
_PIPELINE_NAME = re.compile(r"(SET\s+'pipeline\.name'\s*=\s*'(?:[^']|'')*)'", re.IGNORECASE)


def with_flip27_generator(sql: str, *, rows_per_second: float | None = None) -> str:
    """`sql` with every `datagen` table read through the SQL runner's FLIP-27 generator instead
    ('connector' = 'streamtune-datagen': the same options), which reports busy and idle time, unlike Flink
    2.3's legacy `datagen`; the job name gets `-flip27`. `rows_per_second` replaces every table's rate (0:
    as fast as the job goes)."""
    out = _DATAGEN.sub(r"\1'streamtune-datagen'", sql)
    out = _PIPELINE_NAME.sub(r"\1-flip27'", out, count=1)
    if rows_per_second is not None:
        out = re.sub(r"'rows-per-second'\s*=\s*'[^']*'", f"'rows-per-second' = '{rows_per_second:g}'", out)
    return out


def submit_sql(
    rest_url: str,
    sql: str,
    *,
    install: FlinkInstall | None = None,
    parallelism: int | None = None,
    wait_running_s: float = 120.0,
    say: Callable[[str], None] = lambda _: None,
) -> str:
    """Upload the runner jar and run `sql` as one job; returns its job id once the job is RUNNING."""
    install = install or FlinkInstall.default()
    jar = install.runner_jar(say)
    with FlinkRest(rest_url) as rest:
        jar_id = rest.upload_jar(str(jar))
        body: dict[str, Any] = {
            "entryClass": RUNNER_ENTRY,
            "programArgsList": [base64.b64encode(sql.encode()).decode()],
        }
        if parallelism is not None:
            body["parallelism"] = parallelism
        job_id = rest.run_jar(jar_id, body)
        wait_for_state(rest, job_id, "RUNNING", wait_running_s)
    return job_id


def wait_for_state(rest: FlinkRest, job_id: str, wanted: str, timeout_s: float) -> dict[str, Any]:
    """Poll the job until its state (and every vertex's) is `wanted`; a FAILED or CANCELED job is an error."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = rest.job(job_id)
        state = job.get("state")
        if state in ("FAILED", "CANCELED", "FINISHED") and state != wanted:
            raise ExecutorError(_NAME, f"job {job_id} is {state}: {_exception(rest, job_id)}")
        if state == wanted and all(v.get("status") == wanted for v in job.get("vertices", [])):
            return job
        if time.monotonic() > deadline:
            raise ExecutorError(_NAME, f"job {job_id} did not reach {wanted} within {timeout_s:g} s (it is {state})")
        time.sleep(0.5)


def _exception(rest: FlinkRest, job_id: str) -> str:
    try:
        info = rest.get(f"/jobs/{job_id}/exceptions")
    except ExecutorError:
        return "no exception recorded"
    root = (info.get("rootException") or "").strip().splitlines()
    return root[0][:300] if root else "no exception recorded"
