"""`streamtune calibrate`: fit the sim's per-operator model to what a real executor measured.

The sim's capacity of operator i at parallelism p is the Universal Scalability Law
`usl(p) = r p / (1 + sigma (p - 1) + kappa p (p - 1))` with `r = 1e6 / cost_us` (docs/executors.md), and a
measured window gives it directly: the true processing rate `input / busy` (DS2's) is what the operator's
p instances process per second of being busy. With `y = p / tpr`, the model is linear:

    y = a + b (p - 1) + c p (p - 1),   a = 1 / r,  b = sigma / r,  c = kappa / r

so a non-negative least-squares fit (scipy's nnls) over the windows gives cost_us = 1e6 a, sigma = b / a,
kappa = c / a. Parallelisms seen decide what can be fitted: one gives the cost with the operator's
current sigma and kappa, two add sigma (kappa 0), three or more add both. Selectivity is records out over
records in (for a source: records emitted over records read). Windows where an operator was nearly idle
(busy < min_busy) say little about its scaling and are left out; an operator nearly idle in every window
gets its cost alone from them (busy >= LOW_BUSY on at least LOW_BUSY_MIN_RPS records/s per instance).
Where a window's busy time adds up to more cores than it used (Flink's busy is wall time), busy is first
scaled down to CPU (cpu_shares). A fused chain's members all report their process's busy time (local executor, a Flink vertex), so calibrate
from runs that measure each operator on its own (`--no-fusion`, or a spec of vertices).

The sim gives every instance a core; on a machine with fewer cores than busy instances,
predicted_throughput also caps the job at the cores it gets: `fit_cores` finds them from the windows the
machine held back, or, with `contention=True`, the machine's cores are shared and an instance waits while
the others hold them all (`contention_limit`), and with `preemption` a busy instance also pays for being
preempted by the others (`fit_preemption` reads the machine's cost of it from other jobs' windows).
benchmarks/bench_calibration.py compares the three with measurements (docs/flink.md, "Fidelity").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamtune_cli.capacity import usl_params
from streamtune_cli.errors import UsageError
from streamtune_cli.io import read_json_file
from streamtune_cli.spec.models import MAX_COST_US, MIN_COST_US, JobSpec, OperatorKind

__all__ = [
    "cpu_shares",
    "Sample", "OperatorFit", "load_samples", "fit_usl", "calibrate", "cpu_us_per_record", "predicted_throughput", "fit_preemption", "fit_cores", "contention_limit",
]

MIN_BUSY = 0.05
# An operator never busy MIN_BUSY in any window still has a measured cost: below MIN_BUSY its busy is too
# small to read a scaling from, not to read the CPU a record costs. From LOW_BUSY up such windows give the
# cost alone (the spec's sigma and kappa kept); hints would otherwise stand in for it, often far off.
LOW_BUSY = 0.005
# ... provided each instance took in this many records/s: an operator that sees a few records a second (a
# window's results) spends its busy time on timers and polling, not on records.
LOW_BUSY_MIN_RPS = 1000.0


@dataclass(frozen=True)
class Sample:
    """One measured window: the parallelism it ran at and what was observed (an Observation)."""

    parallelism: dict[str, int]
    observation: Any
    source: str  # file it came from, for messages


@dataclass
class OperatorFit:
    operator: str
    windows: int
    parallelisms: tuple[int, ...]
    cost_us: float | None
    sigma: float | None
    kappa: float | None
    selectivity: float | None
    rel_error: float | None  # root mean square of (model - measured) / measured over the windows used
    note: str = ""
    points: list[tuple[int, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["parallelisms"] = list(self.parallelisms)
        data["points"] = [list(p) for p in self.points]
        return data


def load_samples(paths: list[Path]) -> tuple[list[Sample], dict[str, Any] | None]:
    """Windows from tuning traces (`tune --report`'s trace.json) and `run --json` outputs; also the spec
    data of the first trace (None if only `run` outputs were given). A file that is neither is exit 2."""
    from pydantic import ValidationError

    from streamtune_cli.executors.base import Observation, Trace

    samples: list[Sample] = []
    first_spec: dict[str, Any] | None = None
    for path in paths:
        # Regular files only, bounded, strict JSON (duplicate keys and absurd integers refused with a position).
        data = read_json_file(path, "measured windows")
        try:
            if isinstance(data, dict) and "steps" in data:
                trace = Trace.model_validate(data)
                first_spec = first_spec or trace.spec
                samples += [Sample(dict(s.parallelism), s.observation, str(path)) for s in trace.steps]
            elif isinstance(data, dict) and "observation" in data and "parallelism" in data:
                samples.append(Sample(dict(data["parallelism"]), Observation.model_validate(data["observation"]), str(path)))
            else:
                raise UsageError(f"{path}: not a tuning trace (trace.json) nor a `streamtune run --json` output")
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise UsageError(f"{path}: {where}: {err['msg']}") from None
    if not samples:
        raise UsageError("no measured windows in the given files")
    return samples, first_spec


def fit_usl(
    points: list[tuple[int, float]], sigma0: float, kappa0: float, *, cost_only: bool = False
) -> tuple[float, float, float, float]:
    """(cost_us, sigma, kappa, relative RMS error) from (p, true processing rate) points; `cost_only` keeps
    sigma0 and kappa0 whatever parallelisms the points cover."""
    import numpy as np
    from scipy.optimize import nnls

    p = np.array([pt[0] for pt in points], dtype=float)
    tpr = np.array([pt[1] for pt in points], dtype=float)
    y = p / tpr
    distinct = len(set(p.tolist()))
    if distinct == 1 or cost_only:
        shape = 1.0 + sigma0 * (p - 1) + kappa0 * p * (p - 1)
        a = float((y * shape).sum() / (shape * shape).sum())
        sigma, kappa = sigma0, kappa0
    else:
        columns = [np.ones_like(p), p - 1]
        if distinct >= 3:
            columns.append(p * (p - 1))
        coef, _ = nnls(np.column_stack(columns), y)
        a = float(coef[0])
        sigma = float(coef[1]) / a if a > 0 else sigma0
        kappa = (float(coef[2]) / a if a > 0 else kappa0) if distinct >= 3 else 0.0
        if a <= 0 or sigma > 1.0 or kappa > 1.0:
            # Outside the model's range (throughput that falls as instances are added, or a degenerate fit):
            # hold the scaling at its bound and refit the cost alone.
            sigma = min(1.0, sigma0 if a <= 0 else sigma)
            kappa = min(1.0, kappa0 if a <= 0 else kappa)
            shape = 1.0 + sigma * (p - 1) + kappa * p * (p - 1)
            a = float((y * shape).sum() / (shape * shape).sum())
    model = p / (a * (1.0 + sigma * (p - 1) + kappa * p * (p - 1)))
    error = float(np.sqrt((((model - tpr) / tpr) ** 2).mean()))
    return a * 1e6, sigma, kappa, error


def cpu_shares(observation: Any) -> dict[str, float]:
    """Per operator, the fraction of its busy time that was CPU time in a window (1 where nothing says less).

    Flink's busy time is wall time: a task thread waiting for a core counts as busy, so where threads
    outnumber cores every busy reads high and the costs fitted from it would carry the wait. The window's
    CPU (observation.cpu_cores, e.g. the task managers' JVM CPU) bounds the operators' real work: when the
    busy instances add up to more cores than were used, the difference is time spent waiting. How much of
    it each operator waited depends on the others: with the cores the job ran on known
    (observation.machine_cores), an instance finds every core held while that many others are busy
    (`contention_limit`'s model, 1 - free), so the wait is shared out in proportion to busy x (1 - free),
    free from the others' CPU (`_cpu_of_wall_busy`, a fixed point). A light thread beside busy ones waited
    most of its busy time, a busy one little of it: one that reads busy 0.95 stays nearly saturated, as it
    was, where one ratio for every operator would leave it headroom it never had. Without the core count,
    or with no more instances than cores (then nobody waited for one), that one ratio (used / busy) serves
    every operator. The local executor's busy is CPU time already (unfused, it adds up to the CPU used),
    and the sim's instances each own a core: both give 1."""
    ops = observation.operators
    used = getattr(observation, "cpu_cores", None)
    wall = {op: min(1.0, max(0.0, m.busy)) for op, m in ops.items()}
    count = {op: max(1, int(m.parallelism)) for op, m in ops.items()}
    busy = sum(wall[op] * count[op] for op in ops)
    if used is None or used <= 0 or busy <= 0 or used >= busy:  # 0: no CPU read (a stale counter), not none used
        return {op: 1.0 for op in ops}
    ratio = max(used / busy, 1e-3)
    cores = getattr(observation, "machine_cores", None)
    if not cores or sum(count.values()) <= cores:
        return {op: ratio for op in ops}
    cpu = _cpu_of_wall_busy(wall, count, int(cores), used)
    return {op: min(1.0, max(cpu[op] / wall[op], 1e-3)) if wall[op] > 0 else ratio for op in ops}


def _cpu_of_wall_busy(wall: dict[str, float], count: dict[str, int], cores: int, used: float) -> dict[str, float]:
    """Per operator, the CPU part of a wall-time busy: the window's wait (busy over all instances minus
    `used`) shared out in proportion to how often each operator's instances find every core held
    (wall x (1 - free), free from the others' CPU). A damped fixed point from the proportional split. An
    operator's part is at most its busy (its CPU is never below 0), so where the model gives a light one
    more wait than it was busy, the window's CPU adds up to a little more than `used`."""
    ops = list(wall)
    total = sum(wall[op] * count[op] for op in ops)
    waited = total - used
    cpu = {op: wall[op] * used / total for op in ops}
    for _ in range(200):
        free = _free_core_chance(ops, count, cpu, cores)
        weight = {op: wall[op] * (1.0 - free[op]) for op in ops}
        norm = sum(weight[op] * count[op] for op in ops)
        if norm <= 0:
            return cpu
        target = {op: max(0.0, wall[op] - waited * weight[op] / norm) for op in ops}
        step = max(abs(target[op] - cpu[op]) for op in ops)
        cpu = {op: 0.5 * (cpu[op] + target[op]) for op in ops}
        if step < 1e-7:
            break
    return cpu


def _free_core_chance(ops: list[str], count: dict[str, int], load: dict[str, float], cores: int) -> dict[str, float]:
    """Per operator, the chance that fewer than `cores` of the other instances are busy (each independently
    busy with its operator's `load`): one instance's chance of finding a core."""
    import numpy as np

    # Prefix and suffix distributions over the operators, so "every instance but one of op" costs two
    # convolutions per operator, not one per other operator.
    prefix = [np.eye(1, cores + 1).ravel()]
    for op in ops:
        prefix.append(_with_binomial(prefix[-1], count[op], load[op], cores))
    suffix = [np.eye(1, cores + 1).ravel()]
    for op in reversed(ops):
        suffix.append(_with_binomial(suffix[-1], count[op], load[op], cores))
    suffix.reverse()
    free = {}
    for i, op in enumerate(ops):
        others = _with_binomial(_combined(prefix[i], suffix[i + 1], cores), count[op] - 1, load[op], cores)
        free[op] = 1.0 - float(others[cores])
    return free


def calibrate(spec: JobSpec, samples: list[Sample], *, min_busy: float = MIN_BUSY) -> tuple[JobSpec, list[OperatorFit]]:
    """The spec with cost_us, scaling and selectivity fitted to the samples, and one OperatorFit per operator."""
    from streamtune_cli.spec.loader import spec_to_data

    fits: list[OperatorFit] = []
    scales = [cpu_shares(sample.observation) for sample in samples]
    data = spec_to_data(spec)
    by_id = {op["id"]: op for op in data["operators"]}
    for op in spec.operators:
        points: list[tuple[int, float]] = []
        low: list[tuple[int, float]] = []
        rin = rout = 0.0
        windows = 0
        for sample, shares in zip(samples, scales):
            m = sample.observation.operators.get(op.id)
            if m is None:
                continue
            share = shares[op.id]
            windows += 1
            rin += m.input_rate_rps
            rout += m.output_rate_rps
            if m.input_rate_rps > 0 and m.true_processing_rate_rps > 0:
                point = (int(m.parallelism), float(m.true_processing_rate_rps) / share)
                if m.busy * share >= min_busy:
                    points.append(point)
                elif m.busy * share >= min(LOW_BUSY, min_busy) and m.input_rate_rps >= LOW_BUSY_MIN_RPS * m.parallelism:
                    low.append(point)
        # A source's records in are the records it reads; a Flink source vertex with a chained pre-aggregate
        # (LocalWindowAggregate) emits far fewer, and what it emits is what loads the next vertex.
        selectivity = rout / rin if rin > 0 and op.kind != OperatorKind.sink else None
        cost_only = not points and bool(low)
        if cost_only:
            points = low
        if not points:
            note = "no window measured it" if windows == 0 else f"never busy >= {min(LOW_BUSY, min_busy):g} in {windows} windows"
            fits.append(OperatorFit(op.id, windows, (), None, None, None, selectivity, None, note + ": hints kept"))
            target = by_id[op.id]
        else:
            sigma0, kappa0 = usl_params(op)
            cost, sigma, kappa, error = fit_usl(points, sigma0, kappa0, cost_only=cost_only)
            if not (math.isfinite(cost) and MIN_COST_US <= cost <= MAX_COST_US):
                fits.append(OperatorFit(op.id, windows, (), None, None, None, selectivity, None, "no usable fit: hints kept"))
                if selectivity is not None:
                    by_id[op.id]["selectivity"] = round(selectivity, 6)
                continue
            seen = tuple(sorted({p for p, _ in points}))
            if cost_only:
                note = f"busy < {min_busy:g} in every window: cost only"
            else:
                note = {1: "one parallelism: cost only", 2: "two parallelisms: cost and sigma"}.get(len(seen), "cost, sigma, kappa")
            fits.append(OperatorFit(op.id, windows, seen, cost, sigma, kappa, selectivity, error, note, points))
            target = by_id[op.id]
            target["cost_us"] = round(cost, 6)
            target["scaling"] = {"sigma": round(sigma, 6), "kappa": round(kappa, 8)}
        if selectivity is not None:
            target["selectivity"] = round(selectivity, 6)
    from pydantic import ValidationError

    try:
        calibrated = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"the fitted values do not make a valid spec: {exc.errors()[0]['msg']}") from None
    return calibrated, fits


def cpu_us_per_record(spec: JobSpec, parallelism: dict[str, int]) -> float:
    """CPU (µs) the job spends per source record at `parallelism`: per operator, records per source record x
    its cost at its parallelism (cost_us x the USL slowdown 1 + sigma (p - 1) + kappa p (p - 1): the time an
    instance spends per record grows with p where contention does)."""
    from streamtune_cli.executors.sim import SimDeployment

    return _cpu_us_per_record(SimDeployment(spec, parallelism))


def _cpu_us_per_record(deployment: Any) -> float:
    total = 0.0
    for op in deployment.spec.operators:
        demand = deployment.unit_demand[op.id]
        if demand > 0:
            total += demand * int(deployment.parallelism[op.id]) * 1e6 / deployment.usl[op.id]
    return total


def predicted_throughput(
    spec: JobSpec, parallelism: dict[str, int], *, cores: float | None = None, contention: bool = False,
    preemption: float = 0.0,
) -> float:
    """The most records/s the sim says the job ingests at `parallelism` (sources flat out).

    The sim gives every instance a core of its own. With `cores`, the job also shares that many cores:
    the CPU per source record (cpu_us_per_record) must fit in them, which is what limits a job with more
    instances than cores. `cores` may be the machine's, or what `fit_cores` found the job really gets.
    With `contention` (and `cores`, the machine's), an instance also waits for a core while the others hold
    them all (`contention_limit`). With `preemption` too (`fit_preemption`), a busy instance also pays for
    being preempted: whenever another instance wakes on its core (the scheduler favours the lightly
    loaded one that slept), it loses its turn and its caches, so its CPU per record grows with how busy it
    is and how many instances run (docs/flink.md, "Fidelity")."""
    from streamtune_cli.executors.sim import SimDeployment

    if cores is not None and contention and preemption > 0:
        return _preempted_rate(spec, parallelism, int(cores), preemption)
    return _on_cores(SimDeployment(spec, parallelism), cores, contention)


def _on_cores(deployment: Any, cores: float | None, contention: bool) -> float:
    rate = deployment.max_ingest_rps
    if cores is not None:
        per_record = _cpu_us_per_record(deployment)
        if per_record > 0:
            rate = min(rate, cores * 1e6 / per_record)
        if contention and math.isfinite(rate):
            rate = contention_limit(deployment, int(cores), rate)
    return rate


def _preempted_rate(spec: JobSpec, parallelism: dict[str, int], cores: int, preemption: float) -> float:
    """predicted_throughput with contention, each operator's cost raised by the preemptions its instances
    suffer at `parallelism` over those of the windows its cost was fitted from (every unit at its
    parallelism): an instance of operator k, busy `load_k`, among N running instances pays
    1 + preemption x load_k x (N - 1) per record. Loads and rate are a damped fixed point."""
    from streamtune_cli.executors.sim import SimDeployment

    plain = SimDeployment(spec, parallelism)
    running = [op for op in plain.order if plain.unit_demand[op] > 0]
    instances = sum(int(plain.parallelism[op]) for op in running)
    rate = _on_cores(plain, cores, True)
    if preemption <= 0 or instances <= cores or not math.isfinite(rate) or rate <= 0:
        return rate
    carried = _carried_preemption(spec, plain, running, cores, preemption)
    for _ in range(30):
        deployment = SimDeployment(spec, parallelism)
        for op in running:
            load = min(1.0, rate * plain.unit_demand[op] / plain.usl[op])
            factor = (1.0 + preemption * load * (instances - 1)) / carried[op]
            deployment.usl[op] = plain.usl[op] / factor
            deployment.capacity[op] = plain.capacity[op] / factor
        found = _on_cores(deployment, cores, True)
        if abs(found - rate) <= 1e-4 * rate:
            return found
        rate = 0.5 * (rate + found)
    return rate


def _carried_preemption(spec: JobSpec, plain: Any, running: list[str], cores: int, preemption: float) -> dict[str, float]:
    """What each running operator's fitted cost already carries: the preemption charge of the windows it
    was fitted from, every unit at its parallelism (at that deployment's contended rate); 1 where those
    windows had a core per instance, and nobody was preempted."""
    from streamtune_cli.executors.sim import SimDeployment

    carried: dict[str, float] = {}
    for p in {int(plain.parallelism[op]) for op in running}:
        uniform = SimDeployment(spec, {op: p for op in plain.parallelism})
        at = _on_cores(uniform, cores, True)
        around = sum(int(uniform.parallelism[op]) for op in running) - 1
        for op in running:
            if int(plain.parallelism[op]) == p:
                load = min(1.0, at * uniform.unit_demand[op] / uniform.usl[op]) if math.isfinite(at) else 0.0
                carried[op] = 1.0 + preemption * load * around if around + 1 > cores else 1.0
    return carried


def fit_preemption(cases: list[tuple[JobSpec, dict[str, int], float]], cores: int) -> float:
    """The preemption cost (`predicted_throughput`'s `preemption`) that best predicts measured throughputs:
    `cases` are (calibrated spec, parallelism, records/s measured) on one machine, and the value with the
    least squared log error over them wins, from 0 to 0.3 in steps of 0.01. It is the machine's and the
    executor's (how dear a switch between its processes or threads is), not a job's: windows with every
    unit at one parallelism say nothing of it (they carry what they measured), and those of other jobs on
    the same machine can."""
    best, best_error = 0.0, math.inf
    for step in range(31):
        value = step / 100
        error = 0.0
        for spec, parallelism, measured in cases:
            if measured > 0:
                predicted = predicted_throughput(spec, parallelism, cores=cores, contention=True, preemption=value)
                error += math.log(max(predicted, 1e-9) / measured) ** 2
        if error < best_error - 1e-12:
            best, best_error = value, error
    return best


def _with_binomial(dist: Any, n: int, p: float, cores: int) -> Any:
    """The distribution of busy instances (0..cores, the last bucket "cores or more") after adding n
    independent instances each busy with probability p."""
    import numpy as np

    if n <= 0 or p <= 0.0:
        return dist
    pmf = np.zeros(cores + 1)
    if p >= 1.0:
        pmf[min(n, cores)] = 1.0
    else:
        term = (1.0 - p) ** n  # P(j busy), j = 0, 1, ... by the ratio of consecutive binomial terms
        for j in range(min(n, cores) + 1):
            pmf[j] = term
            term *= (n - j) / (j + 1) * p / (1.0 - p)
        pmf[cores] += max(0.0, 1.0 - pmf.sum())  # the last bucket: "cores or more"
    return _combined(dist, pmf, cores)


def _combined(a: Any, b: Any, cores: int) -> Any:
    """The distribution of the sum of two independent counts, each given up to "cores or more"."""
    import numpy as np

    full = np.convolve(a, b)
    out = full[: cores + 1].copy()
    out[cores] += full[cores + 1 :].sum()
    return out


def contention_limit(deployment: Any, cores: int, upper: float) -> float:
    """The highest total ingest rate <= `upper` at which every operator's hottest instance still gets the
    core time it needs when its job has more instances than `cores`.

    Each instance is busy for a fraction of the time (its load at that rate, as in the sim) and, taken as
    independent of the others, finds every core held by others with the probability that `cores` or more
    of the other instances are busy at once. It then waits, so only the rest of the time is its to use: the
    hottest instance of each operator must fit its load in it. With no more instances than cores nothing
    waits and `upper` stands. Bisection over the rate (the loads rise with it)."""
    ops = [op for op in deployment.order if deployment.unit_demand[op] > 0]
    count = {op: int(deployment.parallelism[op]) for op in ops}
    if cores <= 0 or sum(count.values()) <= cores:
        return upper

    def fits(rate: float) -> bool:
        load = {op: min(1.0, rate * deployment.unit_demand[op] / deployment.usl[op]) for op in ops}
        free = _free_core_chance(ops, count, load, cores)
        return all(rate * deployment.unit_demand[op] / deployment.capacity[op] <= free[op] for op in ops)

    if fits(upper):
        return upper
    low, high = 0.0, upper
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
        if high - low <= 1e-6 * upper:
            break
    return low


def fit_cores(spec: JobSpec, samples: list[Sample], *, slack: float = 0.05) -> float | None:
    """The cores the job effectively gets, from windows its operators did not limit.

    Where the calibrated sim says a window's operators could have ingested more than the window did (by
    more than `slack`), the machine held the job back: its sources ingested `achieved` records/s at
    `cpu_us_per_record` each, which is `achieved x cpu_us_per_record / 1e6` cores at work. The mean over such
    windows is the effective cores: below the machine's count where processes outnumber cores (they block
    on each other's queues and leave cores idle) or other work shares the machine. None when no window was
    held back by the machine (then the machine's cores are the best guess)."""
    from streamtune_cli.executors.sim import SimDeployment

    found = []
    for sample in samples:
        achieved = sample.observation.achieved_rate_rps
        if achieved <= 0:
            continue
        deployment = SimDeployment(spec, sample.parallelism)
        if deployment.max_ingest_rps > achieved * (1 + slack):
            found.append(achieved * _cpu_us_per_record(deployment) / 1e6)
    return sum(found) / len(found) if found else None
