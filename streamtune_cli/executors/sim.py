"""The `sim` executor: an analytic, seeded model of a streaming job that reports Flink-style metrics.

Capacity and demand come from streamtune_cli.capacity (USL scaling, key skew, selectivity); this module
adds backpressure (source throttling until the DAG fits), restart downtime and lag, rate schedules and
measurement noise. Every formula is written out in docs/executors.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from streamtune_cli.capacity import (
    capacity_rps,
    demand_rps,
    is_skewed,
    min_key_share,
    usl_rate,
)
from streamtune_cli.definitions import bottleneck_set, peak_target_rate_rps
from streamtune_cli.errors import ExecutorError, UsageError, excerpt
from streamtune_cli.executors.base import Observation, OperatorMetrics, Parallelism
from streamtune_cli.executors.schedules import rate_factor_function
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec, OperatorKind
from streamtune_cli.spec.parallelism import complete_parallelism, retarget_parallelism

__all__ = ["SimExecutor", "SteadyState", "steady_state", "SimDeployment"]

# An operator counts as saturated when its load is within this relative distance of its capacity.
_SATURATION_TOLERANCE = 1e-9
# Queueing delay uses utilization capped below 1 so a saturated operator has a large but finite delay.
_MAX_UTILIZATION_FOR_LATENCY = 0.99


@dataclass(frozen=True)
class SteadyState:
    """Noise-free state of a deployed job at one target rate: what every metric would read exactly."""

    target_rate_rps: float
    source_target_rps: dict[str, float]
    throttle: float = field(metadata={"doc": "x in (0, 1]: the share of what is offered that every source ingests"})
    achieved_rate_rps: float = field(metadata={"doc": "what the sources ingest: above the target while catching up"})
    headroom: float = field(metadata={"doc": "min over operators of capacity / demand at the target alone"})
    demand_rps: dict[str, float]
    processed_rps: dict[str, float]
    output_rps: dict[str, float]
    capacity_rps: dict[str, float]
    usl_rps: dict[str, float]
    busy: dict[str, float]
    busy_max: dict[str, float]
    busy_min: dict[str, float]
    backpressured: dict[str, float]
    backpressured_max: dict[str, float]
    idle: dict[str, float]
    saturated: tuple[str, ...]
    blocked: tuple[str, ...] = field(
        metadata={"doc": "operators upstream of a saturated operator, and every source while throttled"}
    )
    bottlenecks: tuple[str, ...] = field(metadata={"doc": "definitions.bottleneck_set over saturated and blocked"})
    catch_up_rps: float = field(default=0.0, metadata={"doc": "backlog records/s read on top of the target"})


class SimDeployment:
    """One job at one parallelism: the rate-independent part of the model, computed once per deploy."""

    def __init__(self, spec: JobSpec, parallelism: Parallelism):
        self.parallelism = complete_parallelism(spec, parallelism)
        self.spec = retarget_parallelism(spec, self.parallelism)
        self.graph = JobGraph(self.spec)
        graph, p = self.graph, self.parallelism
        self.order = graph.topological_order
        self.sources = graph.sources
        self.upstream = {op: tuple(graph.upstream(op)) for op in self.order}
        self.downstream = {op: tuple(graph.downstream(op)) for op in self.order}
        self.usl = {op: usl_rate(graph.operator(op), p[op]) for op in self.order}
        self.capacity = {op: capacity_rps(graph, op, p[op]) for op in self.order}
        self.min_share: dict[str, float] = {}
        for op in self.order:
            skew = graph.operator(op).key_skew
            if is_skewed(graph, op) and skew is not None:
                self.min_share[op] = min_key_share(skew.zipf_s, skew.keys, p[op])
            else:
                self.min_share[op] = 1.0 / p[op]
        # Demand is linear in the target rate: keep it per record/s of total target.
        self.rate_shares = graph.source_rates(1.0)
        self.unit_demand = demand_rps(graph, self.rate_shares, p)

    def upstream_of(self, operators: set[str]) -> set[str]:
        """Every operator with a path to one of `operators` (their ancestors; one of them only if it feeds
        another). One pass in reverse topological order: O(V + E), not a graph search per operator."""
        if not operators:
            return set()
        feeds: dict[str, bool] = {}
        for op in reversed(self.order):
            feeds[op] = any(d in operators or feeds[d] for d in self.downstream[op])
        return {op for op, reaches in feeds.items() if reaches}

    @cached_property
    def max_ingest_rps(self) -> float:
        """The fastest the sources can ingest in total (all throttled together, shares kept): the total
        source rate at which the tightest operator is exactly full."""
        ratios = [self.capacity[op] / self.unit_demand[op] for op in self.order if self.unit_demand[op] > 0]
        return min(ratios) if ratios else float("inf")

    def evaluate(self, target_rate_rps: float, catch_up_rps: float = 0.0) -> SteadyState:
        """Steady state at a total target source rate (records/s over all sources).

        `catch_up_rps` is what the sources read from their backlog on top of the target (catch-up after a
        restart or throttling): operators see it as extra input, as they would on a real cluster.
        """
        offered = target_rate_rps + max(0.0, catch_up_rps)
        demand = {op: offered * self.unit_demand[op] for op in self.order}
        # Backpressure travels upstream to every source, and all sources are throttled by the same factor
        # (a slow two-input operator such as a join blocks both of its inputs too): the largest x in
        # (0, 1] at which every operator's demand x * D_i fits its capacity.
        ratios = [self.capacity[op] / demand[op] for op in self.order if demand[op] > 0]
        fit = min(ratios) if ratios else float("inf")
        throttle = min(1.0, fit)
        # Headroom is always against the target alone: >= 1 means the deployment keeps up without backlog.
        headroom = fit * offered / target_rate_rps if target_rate_rps > 0 and math.isfinite(fit) else float("inf")
        processed = {op: throttle * demand[op] for op in self.order}
        graph = self.graph
        output = {
            op: 0.0 if graph.operator(op).kind == OperatorKind.sink else processed[op] * graph.operator(op).selectivity
            for op in self.order
        }
        saturated = tuple(
            op
            for op in self.order
            if processed[op] > 0 and processed[op] >= self.capacity[op] * (1 - _SATURATION_TOLERANCE)
        )
        # Operators upstream of a saturated operator wait on its full input queue.
        upstream_of_saturated = self.upstream_of(set(saturated))
        blocked_set = set(upstream_of_saturated)
        if throttle < 1.0 or (catch_up_rps > 0 and saturated):
            # Every source has input waiting (throttled, or reading backlog at full speed): its spare time
            # is spent blocked.
            blocked_set |= set(self.sources)
        bottlenecks = bottleneck_set(self.graph.nx, set(saturated), blocked_set)
        busy, busy_max, busy_min, bp, bp_max, idle = {}, {}, {}, {}, {}, {}
        for op in self.order:
            p = self.parallelism[op]
            per_instance = self.usl[op] / p
            busy[op] = min(1.0, processed[op] / self.usl[op])
            busy_max[op] = min(1.0, processed[op] / self.capacity[op])
            busy_min[op] = min(1.0, processed[op] * self.min_share[op] / per_instance)
            if op in blocked_set:
                bp[op], bp_max[op] = 1.0 - busy[op], 1.0 - busy_min[op]
            else:
                bp[op], bp_max[op] = 0.0, 0.0
            idle[op] = max(0.0, 1.0 - busy[op] - bp[op])
        return SteadyState(
            target_rate_rps=target_rate_rps,
            source_target_rps={src: target_rate_rps * share for src, share in self.rate_shares.items()},
            throttle=throttle,
            achieved_rate_rps=throttle * offered,
            catch_up_rps=max(0.0, catch_up_rps),
            headroom=headroom,
            demand_rps=demand,
            processed_rps=processed,
            output_rps=output,
            capacity_rps=dict(self.capacity),
            usl_rps=dict(self.usl),
            busy=busy,
            busy_max=busy_max,
            busy_min=busy_min,
            backpressured=bp,
            backpressured_max=bp_max,
            idle=idle,
            saturated=saturated,
            blocked=tuple(op for op in self.order if op in blocked_set),
            bottlenecks=tuple(op for op in self.order if op in bottlenecks),
        )

    def latency_ms(self, state: SteadyState) -> float:
        """Critical-path latency: per operator cost_us as service time, inflated by M/M/1 queueing 1/(1-u)."""
        path_ms: dict[str, float] = {}
        for op in self.order:
            utilization = min(state.busy_max[op], _MAX_UTILIZATION_FOR_LATENCY)
            service_ms = self.graph.operator(op).cost_us / 1000.0 / (1.0 - utilization)
            upstream = [path_ms[u] for u in self.upstream[op]]
            path_ms[op] = service_ms + (max(upstream) if upstream else 0.0)
        return max(path_ms[s] for s in self.graph.sinks) if self.graph.sinks else max(path_ms.values())


def steady_state(spec: JobSpec, parallelism: Parallelism, target_rate_rps: float | None = None) -> SteadyState:
    """Noise-free state of `spec` at `parallelism` and a target rate (default: the workload's base rate)."""
    rate = spec.workload.rate_rps if target_rate_rps is None else target_rate_rps
    return SimDeployment(spec, parallelism).evaluate(rate)


class SimExecutor:
    """Deterministic (seeded) analytic executor; time is simulated, so a whole tuning run takes milliseconds.

    Each observe() advances the clock by warmup_s + window_s and reports the window that ends then; each
    redeploy after the first costs the job's restart_s of downtime, during which input accumulates as lag.
    """

    name = "sim"

    def __init__(
        self,
        *,
        seed: int = 0,
        noise: float = 0.02,
        window_s: float = 30.0,
        warmup_s: float = 30.0,
        rate_rps: float | None = None,
        spec_dir: str | None = None,
    ):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise}")
        if not (math.isfinite(window_s) and window_s > 0 and math.isfinite(warmup_s) and warmup_s >= 0):
            raise ValueError("window_s must be > 0 and warmup_s >= 0 (finite)")
        if rate_rps is not None and not (math.isfinite(rate_rps) and rate_rps > 0):
            raise ValueError(f"rate_rps must be a finite number > 0, got {rate_rps}")
        self.seed = seed
        self.noise = noise
        self.window_s = window_s
        self.warmup_s = warmup_s
        self.rate_rps = rate_rps
        self.spec_dir = spec_dir
        self._rng = np.random.default_rng(seed)
        self.clock_s = 0.0
        self.lag_records = 0.0
        self.restarts = 0
        self.deployment: SimDeployment | None = None
        self.last_state: SteadyState | None = None
        self._factor: Callable[[float], float] | None = None
        self._job_name: str | None = None

    # -- Executor protocol -------------------------------------------------------------------------

    def deploy(self, job: JobSpec, parallelism: Parallelism) -> None:
        deployment = SimDeployment(job, parallelism)
        if self.deployment is None or self._job_name != job.name:
            self.clock_s, self.lag_records, self.restarts = 0.0, 0.0, 0
            self._factor = rate_factor_function(job.workload.schedule, self.spec_dir)
            self._job_name = job.name
        else:
            restart_s = job.restart_s
            # Nothing is ingested while the job restarts: the whole offered input waits at the sources.
            self.lag_records += self.target_rate_at(self.clock_s + restart_s / 2, job) * restart_s
            self.clock_s += restart_s
            self.restarts += 1
        self.deployment = deployment

    def observe(self) -> Observation:
        if self.deployment is None:
            raise ExecutorError(self.name, "observe() called before deploy(): nothing is running")
        deployment = self.deployment
        window_start = self.clock_s + self.warmup_s
        window_end = window_start + self.window_s
        target = self.target_rate_at(window_start + self.window_s / 2, deployment.spec)
        # Warm-up, then the measured window: backlog drains as fast as the DAG allows, throttling adds to it.
        self.lag_records, _ = self._advance(deployment, target, self.lag_records, self.warmup_s)
        self.lag_records, ingest_rps = self._advance(deployment, target, self.lag_records, self.window_s)
        state = deployment.evaluate(target, catch_up_rps=max(0.0, ingest_rps - target))
        self.clock_s = window_end
        self.last_state = state
        if not all(math.isfinite(x) for x in (target, self.lag_records, window_end)):
            # A finite spec can still multiply past the float range (rate x seconds of backlog, or restart
            # after restart); no measurement would mean anything there.
            where = f" (spec folder {self.spec_dir})" if self.spec_dir else ""
            raise UsageError(
                f"job {excerpt(deployment.spec.name)}{where}: the simulation overflows at t = {window_end:g} s (target "
                f"{target:g} rec/s, lag {self.lag_records:g} records): use a smaller rate, schedule factor or restart_s"
            )
        return self._measure(state, deployment, window_end)

    def close(self) -> None:
        """Forget the deployment; safe to call more than once."""
        self.deployment = None

    def __enter__(self) -> "SimExecutor":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def set_base_rate(self, rate_rps: float) -> None:
        """The offered input changes (a new rate level): no restart, the deployment and its lag carry over."""
        if not (math.isfinite(rate_rps) and rate_rps > 0):
            raise ValueError(f"rate_rps must be a finite number > 0, got {rate_rps}")
        self.rate_rps = float(rate_rps)

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _advance(deployment: SimDeployment, target_rps: float, lag: float, duration_s: float) -> tuple[float, float]:
        """(lag after `duration_s`, mean ingest rate over it) at a constant target.

        The sources ingest at most max_ingest_rps: below the target the shortfall adds to the lag; above
        it the spare rate reads the backlog until it is gone, then the sources ingest exactly the target.
        """
        if duration_s <= 0:
            return lag, target_rps
        full = deployment.max_ingest_rps
        if full <= target_rps:
            return lag + (target_rps - full) * duration_s, full
        spare = full - target_rps
        if lag >= spare * duration_s:
            return lag - spare * duration_s, full
        return 0.0, target_rps + lag / duration_s

    def base_rate_rps(self, job: JobSpec) -> float:
        """The rate the schedule multiplies: rate_rps when given (`--rate`), else the spec's workload rate."""
        return self.rate_rps if self.rate_rps is not None else job.workload.rate_rps

    def peak_target_rate_rps(self, job: JobSpec) -> float:
        """Base rate x the schedule's peak factor (definitions.peak_target_rate_rps)."""
        return peak_target_rate_rps(self.base_rate_rps(job), job.workload.schedule, self.spec_dir)

    def target_rate_at(self, t_s: float, job: JobSpec) -> float:
        """Total target source rate at simulated time t_s: base rate x the schedule's factor."""
        factor = self._factor(t_s) if self._factor is not None else job.workload.schedule.factor_at(t_s)
        return self.base_rate_rps(job) * factor

    def _noise_factors(self, n: int) -> np.ndarray:
        if self.noise == 0:
            return np.ones(n)
        # Truncated at 3 sigma so a metric never flips sign or explodes.
        z = np.clip(self._rng.standard_normal(n), -3.0, 3.0)
        return np.maximum(0.0, 1.0 + self.noise * z)

    def _measure(self, state: SteadyState, deployment: SimDeployment, t_s: float) -> Observation:
        order = deployment.order
        factors = self._noise_factors(2 * len(order) + 3)
        operators: dict[str, OperatorMetrics] = {}
        for i, op in enumerate(order):
            # Records in and out of one operator are counted over the same window, so one error serves
            # both (their ratio is the selectivity); busy time is measured separately.
            f_rate, f_busy = factors[2 * i : 2 * i + 2]
            input_rate = state.processed_rps[op] * f_rate
            output_rate = state.output_rps[op] * f_rate
            busy = min(1.0, state.busy[op] * f_busy)
            busy_max = min(1.0, state.busy_max[op] * f_busy)
            busy_min = min(1.0, state.busy_min[op] * f_busy)
            blocked = op in state.blocked
            backpressured = 1.0 - busy if blocked else 0.0
            backpressured_max = 1.0 - busy_min if blocked else 0.0
            operators[op] = OperatorMetrics(
                operator=op,
                parallelism=deployment.parallelism[op],
                input_rate_rps=input_rate,
                output_rate_rps=output_rate,
                busy=busy,
                busy_max=busy_max,
                idle=max(0.0, 1.0 - busy - backpressured),
                backpressured=backpressured,
                backpressured_max=backpressured_max,
                true_processing_rate_rps=input_rate / busy if busy > 0 else 0.0,
                true_output_rate_rps=output_rate / busy if busy > 0 else 0.0,
            )
        _, f_lag, f_latency = factors[-3:]
        # The sources' ingest counters are exact counts over the window, so the achieved rate is exact too,
        # throttled or not: noise must never turn a throttled window into one that seems to keep up (a
        # factor of 1.02 on 99% of the target used to read as 100%). The draw is kept so every other
        # metric's noise stays where it was.
        achieved = state.achieved_rate_rps
        lag = self.lag_records * f_lag
        latency_ms: float | None = (deployment.latency_ms(state) + 1000.0 * lag / max(achieved, 1e-9)) * f_latency
        if not math.isfinite(latency_ms):
            latency_ms = None  # a backlog that (almost) never drains: no latency to report
        return Observation(
            t_s=t_s,
            window_s=self.window_s,
            target_rate_rps=state.target_rate_rps,
            achieved_rate_rps=achieved,
            lag_records=lag,
            latency_ms=latency_ms,
            # Every instance has a core of its own in the sim: the cores used are the busy instances.
            cpu_cores=sum(m.busy * m.parallelism for m in operators.values()),
            operators=operators,
        )


def spec_dir_of(path: str | Path) -> str:
    """The folder a spec file's relative paths (trace schedules) are resolved against."""
    return str(Path(path).resolve().parent)
