"""The flink executor: drives a running job on a real Apache Flink cluster over its REST API.

The job runs already (`streamtune flink submit`, or any job of a production cluster); the spec describes it
(`streamtune import flink`). Each spec operator belongs to one job vertex: by name (an operator of the
fused spec `tune` builds is named like its vertex), or by the ids `import flink` gives chained operators.
A vertex is one unit of parallelism: `deploy` sets each vertex to the largest parallelism asked for any of
its operators through `PUT /jobs/{id}/resource-requirements` (the adaptive scheduler rescales it from the
last checkpoint) and waits until the job runs at it. `observe` waits out a warm-up, then reads cumulative
counters per subtask (records in and out per operator, accumulated busy, idle and backpressured time) at
the start and end of its window: never the 60 s moving averages, which read nonsense after a rescale.
Sources report busy time as NaN; their busy is 1 - idle - backpressured. Network failures and 5xx answers
are retried with backoff; a job that fails or restarts is an ExecutorError naming it.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from streamtune_cli.definitions import BACKPRESSURE_THRESHOLD
from streamtune_cli.errors import ExecutorError, UsageError
from streamtune_cli.executors.base import Observation, OperatorMetrics, Parallelism
from streamtune_cli.spec.models import JobSpec, OperatorKind

__all__ = ["FlinkExecutor", "metric_name"]

_NAME = "flink"
# A source instance blocked on its output this share of the window or more was held back by backpressure.
SOURCE_BLOCKED = BACKPRESSURE_THRESHOLD
# Polling for a fresh metric read (see FlinkExecutor._fresh_counters).
_FRESH_POLL_S = 0.25
_FRESH_TIMEOUT_S = 30.0
# After the first fresh counters, how long the other task managers' counters may take to arrive.
_FRESH_SPREAD_S = 1.0
_COUNTERS = ("accumulateBusyTimeMs", "accumulateIdleTimeMs", "accumulateBackPressuredTimeMs")
# A source's backlog gauge (FLIP-33), read at the end of a window; sources that do not report it count 0.
_PENDING = "pendingRecords"


def _pending(counters: dict[str, list[float]]) -> float:
    return sum(v for name, values in counters.items() if name.endswith(_PENDING) for v in values if math.isfinite(v) and v > 0)


def metric_name(operator_name: str) -> str:
    """How Flink names an operator in metric ids: `Source: bid[1]` -> `Source__bid[1]` (the metric query
    service turns spaces, colons, dots and commas into underscores; long names are cut at 80 characters)."""
    return re.sub(r"[ :.,]", "_", operator_name)[:80]


@dataclass
class _Vertex:
    id: str
    name: str
    parallelism: int
    max_parallelism: int
    operators: list[str]  # spec operator ids in this vertex
    flink_names: dict[str, str]  # spec operator id -> Flink operator name (as in the vertex name)
    chain: tuple[str, ...] = ()  # the vertex's Flink operator names, head first

    @property
    def sources(self) -> list[str]:
        """The source operators chained in this vertex (its head, or sources chained into its head)."""
        return [name for name in self.chain if name.startswith("Source: ")]

    def counters(self, op_id: str) -> tuple[list[str], str, bool]:
        """Metric names (without the subtask prefix) for `op_id`'s records in (summed) and out, and whether
        its input is read from outside. An operator of its own uses its own counters (a source's input is
        what it emitted); one standing for the whole vertex uses the task's, or its sources' output."""
        own = self.flink_names.get(op_id)
        if own:
            m = metric_name(own)
            if own.startswith("Source: "):
                return [f"{m}.numRecordsOut"], f"{m}.numRecordsOut", True
            return [f"{m}.numRecordsIn"], f"{m}.numRecordsOut", False
        if self.sources:
            return [f"{metric_name(n)}.numRecordsOut" for n in self.sources], "numRecordsOut", True
        return ["numRecordsIn"], "numRecordsOut", False


class FlinkExecutor:
    """A job on a Flink cluster (see the module docstring and docs/flink.md)."""

    name = _NAME

    def __init__(
        self,
        *,
        rest: str | None = None,
        job: str | None = None,
        window_s: float = 30.0,
        warmup_s: float = 20.0,
        rate_rps: float | None = None,
        spec_dir: str | None = None,
        settle_timeout_s: float = 180.0,
        attempts: int = 4,
        read_only: bool = False,
    ):
        if not rest or not job:
            raise ValueError("the flink executor needs rest (the cluster's REST address) and job (the job id)")
        for label, value in (("window_s", window_s), ("settle_timeout_s", settle_timeout_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{label} must be a finite number > 0, got {value}")
        if not (math.isfinite(warmup_s) and warmup_s >= 0):
            raise ValueError(f"warmup_s must be a finite number >= 0, got {warmup_s}")
        from streamtune_cli.flink.rest import FlinkRest

        self.rest_url = rest
        self.job_id = job
        self.window_s = float(window_s)
        self.warmup_s = float(warmup_s)
        self.rate_rps = rate_rps
        self.spec_dir = spec_dir
        self.settle_timeout_s = float(settle_timeout_s)
        self.read_only = bool(read_only)  # --dry-run: a deployment that would change the job is refused
        self.restarts = 0
        self.rescale_s: list[float] = []
        self._rest = FlinkRest(rest, attempts=attempts)
        self._spec: JobSpec | None = None
        self._vertices: list[_Vertex] = []
        self._clock0 = time.monotonic()
        self._closed = False

    # -- protocol ------------------------------------------------------------------------------------

    def deploy(self, job: JobSpec, parallelism: Parallelism) -> None:
        self._require_open()
        self._spec = job
        self._vertices = self._map(job)
        wanted = self.vertex_parallelism(job, parallelism)
        for vertex in self._vertices:
            if wanted[vertex.id] > vertex.max_parallelism:
                raise UsageError(
                    f"vertex {vertex.name!r}: parallelism {wanted[vertex.id]} exceeds its max parallelism {vertex.max_parallelism}"
                )
        current = {v.id: v.parallelism for v in self._vertices}
        if wanted == current:
            return
        if self.read_only:
            changes = ", ".join(f"{v.name}: {v.parallelism} -> {wanted[v.id]}" for v in self._vertices if wanted[v.id] != v.parallelism)
            raise UsageError(f"--dry-run changes nothing, but the starting point differs from what the job runs ({changes})")
        budget = self.slot_budget()
        widest = max(wanted.values())
        if widest > budget:
            raise ExecutorError(
                _NAME,
                f"parallelism {widest} needs {widest} task slots, but the cluster can give this job {budget} "
                "(free slots plus its own): cap it with --max-parallelism, or add task managers",
            )
        started = time.monotonic()
        original = self._rest.resource_requirements(self.job_id)
        requirements = json.loads(json.dumps(original))
        for vertex_id, p in wanted.items():
            if vertex_id not in requirements:
                raise ExecutorError(_NAME, f"the cluster has no resource requirements for vertex {vertex_id}")
            bounds = requirements[vertex_id]["parallelism"]
            bounds["upperBound"] = p
            bounds["lowerBound"] = min(int(bounds.get("lowerBound", 1)), p)  # only lowered when it must be
        self._rest.set_resource_requirements(self.job_id, requirements)
        try:
            self._await_parallelism(wanted)
        except ExecutorError:
            # The PUT would stay in force and Flink rescale later, to a parallelism nobody measured: undo it.
            with contextlib.suppress(ExecutorError):
                self._rest.set_resource_requirements(self.job_id, original)
            raise
        self.restarts += 1
        self.rescale_s.append(time.monotonic() - started)

    def observe(self) -> Observation:
        self._require_open()
        if self._spec is None:
            raise ExecutorError(_NAME, "observe() called before deploy(): which job's operators to read is not known")
        self._sleep(self.warmup_s)
        t0, first = self._fresh_counters()
        cpu0 = self._task_manager_cpu_s()
        self._sleep(max(0.0, self.window_s - (time.monotonic() - t0)))
        t1, second = self._fresh_counters()
        cpu1 = self._task_manager_cpu_s()
        observation = self._observation(t0, first, t1, second)
        if cpu0 is not None and cpu1 is not None and cpu1 >= cpu0:
            observation = observation.model_copy(update={"cpu_cores": (cpu1 - cpu0) / max(t1 - t0, 1e-9)})
        cores = self._task_manager_cores()
        if cores is not None:
            observation = observation.model_copy(update={"machine_cores": cores})
        return observation

    def _task_manager_cores(self) -> int | None:
        """The CPU cores of the hosts the task managers run on (`/taskmanagers`, `hardware.cpuCores`), each
        host counted once: task managers started on one machine share its cores (a host is the address in a
        task manager's RPC path, so containers on one machine with addresses of their own count apart).
        None where the cluster does not say."""
        try:
            listing = self._rest.get("/taskmanagers")
        except ExecutorError:
            return None
        per_host: dict[str, int] = {}
        managers = listing.get("taskmanagers") if isinstance(listing, dict) else None
        for tm in managers if isinstance(managers, list) else []:
            hardware = tm.get("hardware") if isinstance(tm, dict) else None
            cores = hardware.get("cpuCores") if isinstance(hardware, dict) else None
            if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
                continue
            host = _host_of(str(tm.get("path", ""))) or str(tm.get("id", len(per_host)))
            per_host[host] = max(per_host.get(host, 0), cores)
        return sum(per_host.values()) or None

    def _task_manager_cpu_s(self) -> float | None:
        """CPU seconds the cluster's task managers' JVMs have used (Status.JVM.CPU.Time, summed over task
        managers: every job on them, not only this one). Read right after fresh counters, from the same
        refresh of Flink's metric cache. None where the cluster does not report it."""
        try:
            rows = self._rest.get("/taskmanagers/metrics", get="Status.JVM.CPU.Time", agg="sum")
        except ExecutorError:
            return None
        for row in rows if isinstance(rows, list) else []:
            value = _number(row.get("sum"))
            if row.get("id") == "Status.JVM.CPU.Time" and math.isfinite(value):
                return value / 1e9
        return None

    def current_parallelism(self, spec: JobSpec) -> dict[str, int]:
        """Each operator of `spec` at its vertex's parallelism as the job runs now."""
        return {op_id: v.parallelism for v in self._map(spec) for op_id in v.operators}

    def slot_budget(self) -> int:
        """The most subtasks any vertex of this job can get: the free slots plus the slots the job holds
        (all vertices share slots, so the job holds as many as its widest vertex)."""
        overview = self._rest.overview()
        job = self._job_running()
        held = max((int(v["parallelism"]) for v in job["vertices"]), default=0)
        return max(1, int(overview.get("slots-available", 0)) + held)

    def unmeasured_sources(self, spec: JobSpec) -> list[str]:
        """Operators of `spec` whose vertex a source heads and which report neither busy nor idle time (a
        legacy SourceFunction: its thread is outside Flink's task time accounting). Read over one short
        window of fresh counters."""
        self._vertices = self._map(spec)
        t0, first = self._fresh_counters()
        t1, second = self._fresh_counters()
        found = []
        for vertex in self._vertices:
            if not vertex.sources:
                continue
            a, b = first[vertex.id], second[vertex.id]
            busy_known = any(math.isfinite(x) and math.isfinite(y) for x, y in zip(a["accumulateBusyTimeMs"], b["accumulateBusyTimeMs"]))
            idle_grew = any(y > x for x, y in zip(a["accumulateIdleTimeMs"], b["accumulateIdleTimeMs"]) if math.isfinite(x) and math.isfinite(y))
            if not (busy_known or idle_grew):
                found += vertex.operators
        return found

    def vertex_parallelism(self, spec: JobSpec, parallelism: Parallelism) -> dict[str, int]:
        """Flink vertex id -> the parallelism `parallelism` asks for it (the largest of its operators')."""
        return {v.id: max(int(parallelism.get(op, v.parallelism)) for op in v.operators) for v in self._map(spec)}

    def peak_target_rate_rps(self, job: JobSpec) -> float:
        from streamtune_cli.definitions import peak_target_rate_rps

        return peak_target_rate_rps(self.base_rate_rps(job), job.workload.schedule, self.spec_dir)

    def base_rate_rps(self, job: JobSpec) -> float:
        return self.rate_rps if self.rate_rps is not None else job.workload.rate_rps

    def close(self) -> None:
        """Closes the HTTP client; the job keeps running at the last deployed parallelism."""
        if not self._closed:
            self._closed = True
            self._rest.close()

    def __enter__(self) -> "FlinkExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- mapping --------------------------------------------------------------------------------------

    def _map(self, spec: JobSpec) -> list[_Vertex]:
        from streamtune_cli.flink.importer import vertex_mapping
        from streamtune_cli.flink.names import operator_id, parse_vertex_name

        job = self._job_running()
        by_name = {v["name"]: v for v in job["vertices"]}
        imported = vertex_mapping(job)
        vertices: dict[str, _Vertex] = {}
        for v in job["vertices"]:
            vertices[v["id"]] = _Vertex(v["id"], v["name"], int(v["parallelism"]), int(v.get("maxParallelism") or 128), [], {})
        for op in spec.operators:
            if op.display_name in by_name:  # a fused operator standing for a whole vertex
                vertex = vertices[by_name[op.display_name]["id"]]
                vertex.operators.append(op.id)
                continue
            if op.id not in imported:
                raise UsageError(
                    f"operator {op.id!r} of {spec.name!r} matches no vertex of Flink job {self.job_id} "
                    "(import the spec from the running job: `streamtune import flink`)"
                )
            vertex = vertices[imported[op.id]]
            vertex.operators.append(op.id)
        taken: set[str] = set()  # ids numbered job-wide, in vertex order, as `import flink` numbers them
        for vertex in vertices.values():
            names = parse_vertex_name(vertex.name).operators
            vertex.chain = tuple(names)
            ids = {operator_id(n, taken): n for n in names}
            for op_id in vertex.operators:
                vertex.flink_names[op_id] = ids.get(op_id, "")
        missing = [v.name for v in vertices.values() if not v.operators]
        if missing:
            raise UsageError(f"Flink vertices {missing} have no operator in {spec.name!r}: the spec describes another job")
        return list(vertices.values())

    # -- reading -------------------------------------------------------------------------------------

    def _job_running(self) -> dict[str, Any]:
        job = self._rest.job(self.job_id)
        state = job.get("state")
        if state != "RUNNING":
            raise ExecutorError(_NAME, f"job {self.job_id} is {state}, not RUNNING")
        return job

    def _await_parallelism(self, wanted: dict[str, int]) -> None:
        deadline = time.monotonic() + self.settle_timeout_s
        while True:
            job = self._rest.job(self.job_id)
            state = job.get("state")
            if state in ("FAILED", "CANCELED", "FINISHED"):
                raise ExecutorError(_NAME, f"job {self.job_id} is {state} after the rescale")
            current = {v["id"]: int(v["parallelism"]) for v in job["vertices"]}
            running = state == "RUNNING" and all(v.get("status") == "RUNNING" for v in job["vertices"])
            if running and all(current.get(k) == p for k, p in wanted.items()):
                for vertex in self._vertices:
                    vertex.parallelism = current[vertex.id]
                return
            if time.monotonic() > deadline:
                raise ExecutorError(
                    _NAME,
                    f"job {self.job_id} did not run at the new parallelism within {self.settle_timeout_s:g} s "
                    f"(it is {state}; asked {wanted}, running {current}; too few free slots?)",
                )
            time.sleep(1.0)

    def _fresh_counters(self) -> tuple[float, dict[str, dict[str, list[float]]]]:
        """Counters as of now, and when that was. Flink's REST serves metrics from a cache that a read
        refreshes in the background (metrics.fetcher.update-interval, 10 s by default): a read can be
        seconds old. So poll until the counters change (idle, busy or backpressured time always grows),
        take that moment as the counters' time, and read every vertex then.

        With several task managers, each one's counters reach that cache when its answer does: a subtask
        on one that answered late would be read as of the refresh before, and its rates over the window
        be off by up to the fetcher's interval. So there, for _FRESH_SPREAD_S more, every vertex is read
        again and each subtask whose counters changed meanwhile takes the later values; it stops early
        when a subtask of the first vertex that was fresh already changes again (the next refresh)."""
        deadline = time.monotonic() + _FRESH_TIMEOUT_S
        before = self._counters(self._vertices[:1])
        while time.monotonic() < deadline:
            time.sleep(_FRESH_POLL_S)
            head = self._counters(self._vertices[:1])
            fresh = _changed_subtasks(before, head)
            if not fresh:
                continue
            at = time.monotonic()
            latest = {**self._counters(self._vertices[1:]), **head}
            if self._task_managers() > 1:
                spread = min(deadline, at + _FRESH_SPREAD_S)
                while time.monotonic() < spread:
                    time.sleep(_FRESH_POLL_S)
                    again = self._counters()
                    changed = _changed_subtasks(latest, again)
                    if changed & fresh:  # a subtask already read fresh changed again: the next refresh
                        break
                    for vertex, i in changed:
                        for name, values in again[vertex].items():
                            latest[vertex][name][i] = values[i]
            return at, latest
        return time.monotonic(), self._counters(self._vertices)

    def _task_managers(self) -> int:
        try:
            return int(self._rest.overview().get("taskmanagers", 1))
        except (ExecutorError, TypeError, ValueError):
            return 1

    def _counters(self, vertices: list[_Vertex] | None = None) -> dict[str, dict[str, list[float]]]:
        """Per vertex: metric -> one cumulative value per subtask."""
        job = self._job_running()
        parallelism = {v["id"]: int(v["parallelism"]) for v in job["vertices"]}
        out: dict[str, dict[str, list[float]]] = {}
        for vertex in self._vertices if vertices is None else vertices:
            if parallelism.get(vertex.id) != vertex.parallelism:
                raise ExecutorError(_NAME, f"vertex {vertex.name!r} changed parallelism during the window (the job restarted?)")
            wanted = list(_COUNTERS)
            for op_id in vertex.operators:
                ins, outgoing, _ = vertex.counters(op_id)
                wanted += [*ins, outgoing]
            wanted += [f"{metric_name(n)}.{_PENDING}" for n in vertex.sources]
            wanted = list(dict.fromkeys(wanted))
            ids = [f"{i}.{name}" for i in range(vertex.parallelism) for name in wanted]
            values: dict[str, float] = {}
            for start in range(0, len(ids), 40):  # keep URLs short
                chunk = ids[start : start + 40]
                for row in self._rest.get(f"/jobs/{self.job_id}/vertices/{vertex.id}/metrics", get=",".join(chunk)):
                    values[row["id"]] = _number(row.get("value"))
            out[vertex.id] = {
                name: [values.get(f"{i}.{name}", math.nan) for i in range(vertex.parallelism)] for name in wanted
            }
        return out

    def _observation(self, t0: float, first: dict, t1: float, second: dict) -> Observation:
        assert self._spec is not None
        wall = max(t1 - t0, 1e-9)
        operators: dict[str, OperatorMetrics] = {}
        achieved = 0.0
        lag = lag_before = 0.0
        reading: list[str] = []  # operators that read from outside (sources, or vertices a source heads)
        unmeasured: list[str] = []  # operators of vertices Flink accounts no time for
        for vertex in self._vertices:
            a, b = first[vertex.id], second[vertex.id]
            # Record counters only: Flink derives accumulated busy time from the others, and it can step back
            # by a few milliseconds between two reads of a running job.
            for name, values in a.items():
                if name in _COUNTERS or name.endswith(_PENDING):
                    continue
                if any(math.isfinite(x) and math.isfinite(y) and y < x for x, y in zip(values, b[name])):
                    raise ExecutorError(
                        _NAME, f"job {self.job_id} restarted during the window (counter {name} of {vertex.name!r} went back)"
                    )

            if not any(math.isfinite(x) for name in _COUNTERS for x in b[name]):
                raise ExecutorError(_NAME, f"Flink reports no busy, idle or backpressured time for vertex {vertex.name!r}")

            def per_subtask(name: str) -> list[float]:
                return [max(0.0, (y - x) / 1000.0 / wall) if math.isfinite(x) and math.isfinite(y) else math.nan for x, y in zip(a[name], b[name])]

            idle = [min(1.0, v) if math.isfinite(v) else 0.0 for v in per_subtask("accumulateIdleTimeMs")]
            bp = [min(1.0, v) if math.isfinite(v) else 0.0 for v in per_subtask("accumulateBackPressuredTimeMs")]
            busy_raw = per_subtask("accumulateBusyTimeMs")
            busy = [
                min(1.0, v) if math.isfinite(v) else max(0.0, 1.0 - i - p)  # sources: NaN busy time
                for v, i, p in zip(busy_raw, idle, bp)
            ]
            if vertex.sources and not any(math.isfinite(v) for v in busy_raw) and not any(idle):
                # A legacy source's thread: neither busy nor idle time is accounted (only the moments its
                # records wait for buffers count as backpressure).
                unmeasured.extend(vertex.operators)
            # FLIP-33's pendingRecords: records the source has not read yet (Kafka, files...), where it says.
            lag += _pending(b)
            lag_before += _pending(a)
            for op_id in vertex.operators:
                op = self._spec.operator(op_id)
                ins, out, reads_outside = vertex.counters(op_id)
                # A sink emits nothing downstream; a sink writer on its own may not count records out at all.
                needed = ins if op.kind == OperatorKind.sink else [*ins, out]
                for name in needed:
                    if not any(math.isfinite(x) for x in b[name]):
                        raise ExecutorError(
                            _NAME,
                            f"Flink reports no metric {name!r} for vertex {vertex.name!r} (a renamed operator?), "
                            "so its records cannot be counted",
                        )
                rin = sum(_rate(a[name], b[name], wall) for name in ins)
                rout = _rate(a[out], b[out], wall) if op.kind != OperatorKind.sink else 0.0
                if reads_outside:
                    achieved += rin
                    reading.append(op_id)
                if op.kind == OperatorKind.sink:
                    rout = 0.0
                mean_busy = sum(busy) / len(busy)
                operators[op_id] = OperatorMetrics(
                    operator=op_id,
                    parallelism=vertex.parallelism,
                    input_rate_rps=rin,
                    output_rate_rps=rout,
                    busy=mean_busy,
                    busy_max=max(busy),
                    idle=sum(idle) / len(idle),
                    backpressured=sum(bp) / len(bp),
                    backpressured_max=max(bp),
                    true_processing_rate_rps=rin / mean_busy if mean_busy > 1e-6 else 0.0,
                    true_output_rate_rps=rout / mean_busy if mean_busy > 1e-6 else 0.0,
                )
        # What was offered is not visible for a generator source (no backlog to read): the sources read all of
        # it unless backpressure held them back. So a window whose sources were never blocked for long
        # (busiest source instance < SOURCE_BLOCKED of the time) kept up: its target is what they read.
        # Otherwise the target is the workload's rate now, and the window keeps up only if they read that.
        sources = [operators[op_id] for op_id in reading]
        blocked = any(m.backpressured_max >= SOURCE_BLOCKED for m in sources)
        target = self._target_now()
        if not blocked:
            target = achieved
        # A source that reports its backlog tells more: what it read plus how fast the backlog grew is what
        # arrived, whether or not it was blocked.
        if lag > 0 or lag_before > 0:
            target = achieved + max(0.0, (lag - lag_before) / wall)
        # A vertex with no time accounted (a legacy SourceFunction at its head) would read busy 1 and look
        # saturated whatever it does. It is taken to run at the workload's declared peak rate and no faster:
        # busy = what the sources read / the peak. `tune` holds such vertices at their parallelism or below.
        if unmeasured:
            share = min(1.0, achieved / self.peak_target_rate_rps(self._spec)) if achieved > 0 else 1.0
            for op_id in unmeasured:
                m = operators[op_id]
                busy = max(0.0, min(share, 1.0 - m.backpressured_max))
                operators[op_id] = m.model_copy(
                    update={
                        "busy": busy,
                        "busy_max": busy,
                        "idle": max(0.0, 1.0 - busy - m.backpressured),
                        "true_processing_rate_rps": m.input_rate_rps / busy if busy > 1e-6 else 0.0,
                        "true_output_rate_rps": m.output_rate_rps / busy if busy > 1e-6 else 0.0,
                    }
                )
        return Observation(
            t_s=t1 - self._clock0,
            window_s=wall,
            target_rate_rps=target,
            achieved_rate_rps=achieved,
            lag_records=lag,
            latency_ms=None,
            operators=operators,
        )

    def _target_now(self) -> float:
        from streamtune_cli.executors.schedules import rate_factor_function

        assert self._spec is not None
        factor = rate_factor_function(self._spec.workload.schedule, self.spec_dir)
        return self.base_rate_rps(self._spec) * factor(time.monotonic() - self._clock0)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(5.0, left))
            self._job_running()

    def _require_open(self) -> None:
        if self._closed:
            raise ExecutorError(_NAME, "the executor is closed")


def _changed_subtasks(a: dict[str, dict[str, list[float]]], b: dict[str, dict[str, list[float]]]) -> set[tuple[str, int]]:
    """(vertex, subtask) whose counters differ between two reads, NaN equal to NaN (a source's busy time
    is always NaN)."""
    changed = set()
    for vertex, metrics in a.items():
        for name, values in metrics.items():
            for i, (x, y) in enumerate(zip(values, b[vertex][name])):
                if not (x == y or (math.isnan(x) and math.isnan(y))):
                    changed.add((vertex, i))
    return changed


def _host_of(path: str) -> str | None:
    """The host of a task manager's RPC address (`pekko.tcp://flink@10.0.0.5:6122/user/rpc/taskmanager_0`)."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(path).hostname if "://" in path else None
    except ValueError:
        return None


def _rate(first: list[float], second: list[float], wall: float) -> float:
    total = 0.0
    for x, y in zip(first, second):
        if math.isfinite(x) and math.isfinite(y):
            total += max(0.0, y - x)
    return total / wall


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
