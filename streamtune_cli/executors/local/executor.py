"""The local executor: runs a job for real on this machine, one OS process per chain instance.

`deploy` starts the job (or rescales it: stop at a barrier, snapshot keyed state, redistribute it by key
group, restart); `observe` waits out a warm-up, then measures one window of real wall-clock time from the
workers' cumulative counters; `close` ends every process it started, by PID, and checks that none is left.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from streamtune_cli.errors import ExecutorError, UsageError
from streamtune_cli.executors.base import FRACTION_SLACK, Observation, OperatorMetrics, Parallelism
from streamtune_cli.machine import available_cores
from streamtune_cli.spec.models import JobSpec

__all__ = ["LocalExecutor", "DeploymentStats", "LOCAL_START_METHOD", "nexmark_config"]

# spawn: a worker never inherits the coordinator's threads or locks (torch, rich, a test runner's).
LOCAL_START_METHOD = "spawn"
_POLL_S = 0.1


@dataclass
class _Process:
    chain: int
    instance: int
    process: Any
    metrics: Any


@dataclass
class _Deployment:
    plan: Any
    epoch: int
    processes: list[_Process]
    queues: list[Any]
    control: Any
    started_s: float


@dataclass
class DeploymentStats:
    """Counters of a deployment (or of all of them) that the Observation does not carry."""

    records_in: dict[str, float] = field(default_factory=dict)
    records_out: dict[str, float] = field(default_factory=dict)
    bytes_serialized: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0


class LocalExecutor:
    """Real execution on this machine (see docs/executors.md, "The local executor")."""

    name = "local"

    def __init__(
        self,
        *,
        window_s: float = 10.0,
        warmup_s: float = 5.0,
        rate_rps: float | None = None,
        spec_dir: str | None = None,
        fusion: bool = True,
        sink: str = "count",
        sink_dir: str | None = None,
        seed: int = 0,
        queue_batches: int = 8,
        batch_rows: int = 8192,
        bounded_events: int | None = None,
        start_timeout_s: float = 120.0,
        cores: int | None = None,
    ):
        from streamtune_cli.executors.local.plan import SINK_MODES

        if not (math.isfinite(window_s) and window_s > 0 and math.isfinite(warmup_s) and warmup_s >= 0):
            raise ValueError("window_s must be > 0 and warmup_s >= 0 (finite)")
        if rate_rps is not None and not (math.isfinite(rate_rps) and rate_rps > 0):
            raise ValueError(f"rate_rps must be a finite number > 0, got {rate_rps}")
        if sink not in SINK_MODES:
            raise ValueError(f"sink must be one of {', '.join(SINK_MODES)}, got {sink!r}")
        if sink == "parquet" and not sink_dir:
            raise ValueError("sink 'parquet' needs sink_dir (the folder the sinks write to)")
        self.window_s = float(window_s)
        self.warmup_s = float(warmup_s)
        self.rate_rps = rate_rps
        self.spec_dir = spec_dir
        self.fusion = bool(fusion)
        self.sink = sink
        self.sink_dir = sink_dir
        self.seed = int(seed)
        self.queue_batches = int(queue_batches)
        self.batch_rows = int(batch_rows)
        self.bounded_events = bounded_events
        self.start_timeout_s = float(start_timeout_s)
        self.cpu_set = _cpu_set(cores)  # None: the processes may run on every core this process may use
        self.restarts = 0
        self.rescale_s: list[float] = []  # wall time of each rescale, stop to running again
        self.totals = DeploymentStats()  # finished deployments' counters (records per operator, bytes)
        self._ctx = multiprocessing.get_context(LOCAL_START_METHOD)
        self._deployment: _Deployment | None = None
        self._job: JobSpec | None = None
        self._state_dir: str | None = None
        self._clock0: float | None = None
        self._nexmark: Any = None
        self._factor: Callable[[float], float] | None = None
        self._pids: set[int] = set()
        self._carry: dict[str, float] = {}
        self._stopped_at: float | None = None
        self.last_window: dict[str, float] = {}  # whole-job counters of the last observed window
        self.totals_emitted = 0.0
        self._bounded_total = 0.0

    # -- Executor protocol -------------------------------------------------------------------------

    def deploy(self, job: JobSpec, parallelism: Parallelism) -> None:
        from streamtune_cli.executors.local.plan import build_plan
        from streamtune_cli.spec.parallelism import retarget_parallelism

        spec = retarget_parallelism(job, parallelism)
        plan = build_plan(spec, fusion=self.fusion, sink_mode=self.sink, spec_dir=self.spec_dir)
        if self._deployment is not None and self._job is not None and self._job.name != job.name:
            self.close()
        restore: int | None = None
        if self._deployment is None:
            self._fresh_start(job)
            epoch = 0
        else:
            stopped = time.monotonic()
            epoch = self._stop_at_barrier()
            restore = epoch
            epoch += 1
            self.restarts += 1
        self._job = job
        self._start(plan, epoch, restore)
        if restore is not None:
            self.rescale_s.append(time.monotonic() - stopped)

    def observe(self) -> Observation:
        deployment = self._require()
        self._sleep(self.warmup_s)
        before = self._read(deployment)
        self._sleep(self.window_s)
        after = self._read(deployment)
        return self._observation(deployment, before, after)

    def close(self) -> None:
        """End every process this executor started (abort, then terminate, then kill); safe to call twice."""
        deployment, self._deployment = self._deployment, None
        if deployment is not None:
            deployment.control[0] = 2
            self._reap(deployment, grace_s=3.0)
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def peak_target_rate_rps(self, job: JobSpec) -> float:
        from streamtune_cli.definitions import peak_target_rate_rps

        return peak_target_rate_rps(self.base_rate_rps(job), job.workload.schedule, self.spec_dir)

    def base_rate_rps(self, job: JobSpec) -> float:
        return self.rate_rps if self.rate_rps is not None else job.workload.rate_rps

    def set_base_rate(self, rate_rps: float) -> None:
        """The offered input changes with no restart: running sources pick the new rate up at once."""
        if not (math.isfinite(rate_rps) and rate_rps > 0):
            raise ValueError(f"rate_rps must be a finite number > 0, got {rate_rps}")
        self.rate_rps = float(rate_rps)
        if self._deployment is not None:
            self._deployment.control[1] = self.rate_rps

    # -- bounded runs -------------------------------------------------------------------------------

    def source_progress(self) -> float:
        """Fraction of a bounded input the sources have emitted so far (0..1)."""
        deployment = self._require()
        emitted = self.totals_emitted + sum(p.metrics[_slot("source_emitted")] for p in deployment.processes)
        return min(1.0, emitted / self._bounded_total) if self._bounded_total else 0.0

    def wait_finished(self, timeout_s: float = 600.0) -> DeploymentStats:
        """Wait until a bounded input has gone through every operator; the counters of the whole run."""
        deployment = self._require()
        if self.bounded_events is None:
            raise UsageError("wait_finished() needs a bounded input (bounded_events)")
        deadline = time.monotonic() + timeout_s
        while any(p.process.is_alive() for p in deployment.processes):
            self._check_health(deployment)
            if time.monotonic() > deadline:
                self.close()
                raise ExecutorError(self.name, f"the bounded run did not finish within {timeout_s:g} s")
            time.sleep(_POLL_S)
        self._check_health(deployment)
        self._fold(deployment)
        self._deployment = None
        deployment.control[0] = 2
        self._reap(deployment, grace_s=1.0)
        return self.totals

    def stats(self) -> DeploymentStats:
        """Counters so far: finished deployments plus the running one."""
        total = DeploymentStats(dict(self.totals.records_in), dict(self.totals.records_out), self.totals.bytes_serialized)
        if self._deployment is not None:
            self._fold(self._deployment, into=total)
        return total

    @property
    def pids(self) -> set[int]:
        """Every PID this executor ever started (to check that none outlives it)."""
        return set(self._pids)

    # -- internals --------------------------------------------------------------------------------

    def _require(self) -> _Deployment:
        if self._deployment is None:
            raise ExecutorError(self.name, "no job is running (deploy() first, or the executor was closed)")
        return self._deployment

    def _fresh_start(self, job: JobSpec) -> None:
        from streamtune_cli.executors.schedules import rate_factor_function
        from streamtune_cli.spec.graph import JobGraph

        self._state_dir = tempfile.mkdtemp(prefix="streamtune-local-")
        self._clock0 = time.monotonic()
        self._carry = {}
        self._stopped_at = None
        self.restarts = 0
        self.rescale_s = []
        self.totals = DeploymentStats()
        self.totals_emitted = 0.0
        self._factor = rate_factor_function(job.workload.schedule, self.spec_dir)
        self._nexmark = nexmark_config(job, self.seed)
        self._bounded_total = 0.0
        if self.bounded_events is not None:
            from streamtune_cli.executors.local.nexmark import ordinals_below

            rates = JobGraph(job).source_rates(job.workload.rate_rps)
            for op in job.operators:
                if op.id in rates:
                    kinds = op.events or ["bid"]
                    self._bounded_total += (
                        ordinals_below(kinds[0], self.bounded_events) if op.generator == "nexmark" else self.bounded_events
                    )

    def _start(self, plan: Any, epoch: int, restore: int | None) -> None:
        from streamtune_cli.executors.local.worker import WorkerArgs, metrics_size, worker_main

        assert self._state_dir is not None and self._clock0 is not None
        queues = [
            self._ctx.Queue(maxsize=self.queue_batches) for chain in plan.chains for _ in range(chain.parallelism)
        ]
        size = _pipe_bytes(len(queues))
        for q in queues:
            _widen_pipe(q, size)
        control = self._ctx.RawArray("d", 2)
        control[0] = 0.0
        control[1] = float(self.base_rate_rps(plan.spec))
        processes: list[_Process] = []
        deployment = _Deployment(plan, epoch, processes, queues, control, time.monotonic())
        self._deployment = deployment
        for chain in plan.chains:
            for instance in range(chain.parallelism):
                metrics = self._ctx.RawArray("d", metrics_size(len(chain.members)))
                args = WorkerArgs(
                    plan=plan,
                    chain=chain.index,
                    instance=instance,
                    epoch=epoch,
                    state_dir=self._state_dir,
                    restore_epoch=restore,
                    start_monotonic=self._clock0,
                    spec_dir=self.spec_dir,
                    nexmark=self._nexmark,
                    bounded_events=self.bounded_events,
                    sink_dir=self.sink_dir,
                    batch_rows=self.batch_rows,
                    parent_pid=os.getpid(),
                    carry_due=self._carry_share(plan, chain, instance),
                    stopped_at=self._stopped_at if restore is not None else None,
                )
                process = self._ctx.Process(
                    target=worker_main,
                    args=(args, queues, metrics, control),
                    name=f"streamtune-local:{chain.name}#{instance}",
                    daemon=True,
                )
                with _single_threaded_children(), _main_module_hidden():
                    process.start()
                if self.cpu_set is not None:
                    os.sched_setaffinity(process.pid, self.cpu_set)
                self._pids.add(process.pid)
                processes.append(_Process(chain.index, instance, process, metrics))
        deadline = time.monotonic() + self.start_timeout_s
        from streamtune_cli.executors.local.worker import SLOT

        while not all(p.metrics[SLOT["ready"]] == 1.0 for p in processes):
            self._check_health(deployment)
            if time.monotonic() > deadline:
                self.close()
                raise ExecutorError(self.name, f"the job's processes did not start within {self.start_timeout_s:g} s")
            time.sleep(0.02)

    def _carry_share(self, plan: Any, chain: Any, instance: int) -> float:
        """The part of a source's backlog that instance `instance` reads: its share of the source's splits."""
        from streamtune_cli.executors.local.partition import key_group_range

        if chain.head not in plan.sources or chain.head not in self._carry:
            return 0.0
        splits = plan.sources[chain.head].splits
        return self._carry[chain.head] * len(key_group_range(instance, chain.parallelism, splits)) / splits

    def _stop_at_barrier(self) -> int:
        """Stop the running deployment at a barrier (state snapshotted); returns its epoch.

        The sources' backlog carries over to the next deployment, plus what is offered while it restarts.
        """
        from streamtune_cli.executors.local.worker import SLOT

        deployment = self._require()
        self._stopped_at = time.monotonic()
        deployment.control[0] = 1
        deadline = time.monotonic() + self.start_timeout_s
        while any(p.process.is_alive() for p in deployment.processes):
            self._check_health(deployment)
            if time.monotonic() > deadline:
                self.close()
                raise ExecutorError(self.name, "the job did not reach its stop barrier in time")
            time.sleep(0.02)
        self._check_health(deployment)
        self._carry = {}
        for p in deployment.processes:
            head = deployment.plan.chains[p.chain].head
            if head in deployment.plan.sources:
                backlog = max(0.0, p.metrics[SLOT["source_due"]] - p.metrics[SLOT["source_emitted"]])
                self._carry[head] = self._carry.get(head, 0.0) + backlog
        self._fold(deployment)
        for q in deployment.queues:
            q.close()
        self._deployment = None
        return deployment.epoch

    def _fold(self, deployment: _Deployment, into: DeploymentStats | None = None) -> None:
        from streamtune_cli.executors.local.worker import SLOT, member_slot

        target = into if into is not None else self.totals
        for p in deployment.processes:
            chain = deployment.plan.chains[p.chain]
            for pos, member in enumerate(chain.members):
                target.records_in[member] = target.records_in.get(member, 0.0) + p.metrics[member_slot(pos, "records_in")]
                target.records_out[member] = target.records_out.get(member, 0.0) + p.metrics[member_slot(pos, "records_out")]
            target.bytes_serialized += p.metrics[SLOT["bytes_serialized"]]
            target.cpu_s += p.metrics[SLOT["cpu_s"]]
            if into is None:
                self.totals_emitted += p.metrics[SLOT["source_emitted"]]

    def _check_health(self, deployment: _Deployment) -> None:
        from streamtune_cli.executors.local.worker import SLOT, error_path

        for p in deployment.processes:
            code = p.process.exitcode
            if code is None or (code == 0 and p.metrics[SLOT["state"]] in (1.0, 2.0)):
                continue
            assert self._state_dir is not None
            path = error_path(self._state_dir, p.chain, p.instance)
            chain = deployment.plan.chains[p.chain]
            line = path.read_text().strip() if path.exists() else f"{chain.name} (instance {p.instance}) exited with code {code}"
            self.close()
            raise ExecutorError(self.name, f"operator failed: {line}")

    def _reap(self, deployment: _Deployment, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        for p in deployment.processes:
            p.process.join(max(0.0, deadline - time.monotonic()))
        for p in deployment.processes:
            if p.process.is_alive():
                p.process.terminate()
        for p in deployment.processes:
            p.process.join(2.0)
            if p.process.is_alive():
                p.process.kill()
                p.process.join(2.0)
        for q in deployment.queues:
            q.cancel_join_thread()
            q.close()

    def _sleep(self, seconds: float) -> None:
        deployment = self._require()
        end = time.monotonic() + seconds
        while True:
            self._check_health(deployment)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(_POLL_S, left))

    def _read(self, deployment: _Deployment) -> tuple[float, list[list[float]]]:
        return time.monotonic(), [list(p.metrics) for p in deployment.processes]

    def _observation(self, deployment: _Deployment, before: tuple, after: tuple) -> Observation:
        from streamtune_cli.executors.local.worker import SLOT, member_slot

        assert self._clock0 is not None
        t0, m0 = before
        t1, m1 = after
        wall = max(t1 - t0, 1e-9)
        plan = deployment.plan

        def frac(value: float) -> float:
            return min(1.0, max(0.0, value))

        per_op: dict[str, list[tuple[float, float, float, float, float]]] = {}
        achieved = 0.0
        offered = 0.0
        lag = 0.0
        for p, a, b in zip(deployment.processes, m0, m1):
            chain = plan.chains[p.chain]
            busy = frac((b[SLOT["cpu_s"]] - a[SLOT["cpu_s"]]) / wall)
            idle = frac((b[SLOT["idle_s"]] - a[SLOT["idle_s"]]) / wall)
            bp = frac((b[SLOT["backpressured_s"]] - a[SLOT["backpressured_s"]]) / wall)
            if chain.head in plan.sources:
                achieved += (b[SLOT["source_emitted"]] - a[SLOT["source_emitted"]]) / wall
                offered += (b[SLOT["source_due"]] - a[SLOT["source_due"]]) / wall
                lag += max(0.0, b[SLOT["source_due"]] - b[SLOT["source_emitted"]])
            for pos, member in enumerate(chain.members):
                rin = (b[member_slot(pos, "records_in")] - a[member_slot(pos, "records_in")]) / wall
                rout = (b[member_slot(pos, "records_out")] - a[member_slot(pos, "records_out")]) / wall
                per_op.setdefault(member, []).append((rin, rout, busy, idle, bp))
        operators: dict[str, OperatorMetrics] = {}
        for op in plan.spec.operators:
            rows = per_op[op.id]
            rin = sum(r[0] for r in rows)
            rout = sum(r[1] for r in rows)
            busy = sum(r[2] for r in rows) / len(rows)
            operators[op.id] = OperatorMetrics(
                operator=op.id,
                parallelism=len(rows),
                input_rate_rps=rin,
                output_rate_rps=rout,
                busy=busy,
                busy_max=max(r[2] for r in rows),
                idle=sum(r[3] for r in rows) / len(rows),
                backpressured=sum(r[4] for r in rows) / len(rows),
                backpressured_max=max(r[4] for r in rows),
                true_processing_rate_rps=rin / busy if busy > FRACTION_SLACK else 0.0,
                true_output_rate_rps=rout / busy if busy > FRACTION_SLACK else 0.0,
            )
        self.last_window = {
            "wall_s": wall,
            "processes": float(len(deployment.processes)),
            "cpu_s": sum(b[SLOT["cpu_s"]] - a[SLOT["cpu_s"]] for a, b in zip(m0, m1)),
            "bytes_serialized": sum(b[SLOT["bytes_serialized"]] - a[SLOT["bytes_serialized"]] for a, b in zip(m0, m1)),
            "ingested": achieved * wall,
        }
        # The target is the input that arrived in the window (the schedule's rate, in the quanta the sources
        # read it in): achieved == target exactly while the sources have no backlog, and lag tells the rest.
        target = offered
        return Observation(
            t_s=t1 - self._clock0,
            window_s=wall,
            target_rate_rps=target,
            achieved_rate_rps=achieved,
            lag_records=lag,
            latency_ms=None,
            cpu_cores=self.last_window["cpu_s"] / wall,
            machine_cores=len(self.cpu_set) if self.cpu_set is not None else available_cores(),
            operators=operators,
        )


def _cpu_set(cores: int | None) -> set[int] | None:
    """The first `cores` CPUs this process may run on (the job's processes are pinned to them)."""
    if cores is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("cores needs CPU affinity (Linux); leave it unset on this system")
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= cores <= len(allowed):
        raise ValueError(f"cores must be between 1 and the {len(allowed)} CPUs this process may use, got {cores}")
    return set(allowed[:cores])


@contextlib.contextmanager
def _main_module_hidden() -> Any:
    """Start workers without re-running the caller's main module: `spawn` would import it again in every
    worker (the CLI's script: slower starts) or fail where it is not a file (`python - < script`, some
    notebooks). A worker needs nothing from it: its entry point and arguments live in this package."""
    import sys

    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main is not None and name in main.__dict__}
    if "__file__" in saved:
        delattr(main, "__file__")
    if "__spec__" in saved:
        main.__spec__ = None  # type: ignore[union-attr]  # spawn reads it, so it must exist
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


@contextlib.contextmanager
def _single_threaded_children() -> Any:
    """One instance is one thread of work: polars, Arrow and BLAS in a worker must not fan out over the
    machine, or its CPU time would no longer be the time one instance spends on its records."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_THREAD_VARIABLES = ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def nexmark_config(job: JobSpec, seed: int = 0) -> Any:
    """The generator settings a job runs with: event time advances like wall time at the spec's base rate
    (so a 10 s window holds 10 s of input), whatever rate the job is later asked for."""
    from streamtune_cli.executors.local.nexmark import PER_50, NexmarkConfig
    from streamtune_cli.spec.graph import JobGraph

    rates = JobGraph(job).source_rates(job.workload.rate_rps)
    stream = 0.0
    for op in job.operators:
        if op.id in rates and op.generator == "nexmark":
            kinds = op.events or ["bid"]
            stream = max(stream, rates[op.id] * 50 / sum(PER_50[k] for k in kinds))
    return NexmarkConfig(seed=seed, events_per_second=stream if stream > 0 else job.workload.rate_rps)


def _slot(name: str) -> int:
    from streamtune_cli.executors.local.worker import SLOT

    return SLOT[name]


# Linux's pipes hold 64 KiB by default: a batch of 8192 records (hundreds of KiB of Arrow IPC) then crosses
# in a dozen write/read handoffs between the sender's queue-feeder thread and the receiver, each waiting for
# the other to be scheduled, which on a machine with fewer cores than processes leaves the receiver waiting
# for data while the sender is blocked on a "full" queue. A pipe of 1 MiB (Linux's default cap for an
# unprivileged process, /proc/sys/fs/pipe-max-size) takes a batch in one write.
_PIPE_BYTES = 1 << 20
_DEFAULT_PIPE_BYTES = 1 << 16
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux), named in the fcntl module from Python 3.10 on Linux only


def _pipe_bytes(queues: int) -> int:
    """The pipe size to give each of `queues` queues: 1 MiB, less where that many would take more than a
    quarter of the user's pipe allowance (/proc/sys/fs/pipe-user-pages-soft: past it Linux shrinks every
    new pipe of the user, other programs' too, to one page). 0: keep the default."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        soft_pages = int(Path("/proc/sys/fs/pipe-user-pages-soft").read_text().strip())
    except (OSError, ValueError):
        soft_pages = 16384  # Linux's default
    size = _PIPE_BYTES
    if soft_pages > 0:  # 0: no limit
        size = min(size, soft_pages * os.sysconf("SC_PAGE_SIZE") // 4 // max(1, queues))
    size = 1 << (size.bit_length() - 1) if size > 0 else 0  # the kernel rounds up to a power of two pages
    return size if size > _DEFAULT_PIPE_BYTES else 0


def _widen_pipe(q: Any, size: int) -> None:
    if size <= 0:
        return
    import fcntl

    setpipe = getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ)
    try:
        fcntl.fcntl(q._writer.fileno(), setpipe, size)
    except (AttributeError, OSError, ValueError):
        pass  # a lower cap, or no such call: the default pipe works, only slower
