"""Synthetic histories: template jobs run on the sim executor at under-, near- and over-provisioned parallelism.

Run i of seed S depends only on (S, i): its family, spec, rate, parallelism plan and measurement noise are
drawn from numpy's Generator seeded with [S, i], so `--jobs 100` is the first 100 runs of `--jobs 2000`.
That also makes generation resumable: runs already in the history (an interrupted or shorter earlier
generation with the same seed) are skipped, and only the missing ones are simulated and written.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from streamtune_cli.capacity import capacity_rps, demand_rps
from streamtune_cli.executors.base import Observation
from streamtune_cli.executors.registry import make_executor
from streamtune_cli.history.records import RunsBuilder
from streamtune_cli.history.store import HistoryStore
from streamtune_cli.history.templates import FAMILIES, Family, draw_spec
from streamtune_cli.machine import available_cores
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec, Partitioning, Workload
from streamtune_cli.tuning.oracle import oracle_parallelism

__all__ = [
    "GeneratedRun",
    "GenerateSummary",
    "WINDOW_PLAN",
    "simulate_run",
    "generate_history",
    "forward_groups",
    "default_workers",
    "capped_workers",
    "run_id_for",
]

# Each run measures one window per entry, in a shuffled order: provisioning relative to the oracle.
WINDOW_PLAN: tuple[str, ...] = ("under_one", "under_all", "near", "near", "over", "over")
# The oracle's largest operator parallelism lands in this range; the rate is chosen to get there.
_PEAK_PARALLELISM = (3, 16)
_RUNS_PER_PART = 1000
# Window rate / the run's base rate (at which the oracle is computed), by provisioning kind.
_RATE_JITTER = {"under": (1.0, 1.15), "near": (0.9, 1.1), "over": (0.85, 1.0)}


@dataclass
class GeneratedRun:
    run_id: str
    family: str
    variant: str
    spec: JobSpec
    graph: JobGraph
    seed: int
    windows: list[Observation]
    plan: list[str]
    oracle: dict[str, int]


@dataclass
class GenerateSummary:
    """What one generate call did: `runs` and `rows` written now; `already_present` runs found and skipped."""

    out: Path
    runs: int
    rows: int
    parts: list[Path] = field(default_factory=list)
    families: dict[str, int] = field(default_factory=dict)
    already_present: int = 0


def run_id_for(seed: int, index: int) -> str:
    """The id of run `index` of seed `seed`: the same in every generation, which is what resuming relies on."""
    return f"gen-{seed}-{index:06d}"


def forward_groups(graph: JobGraph) -> list[list[str]]:
    """Operators joined by forward edges (they must share a parallelism to stay forward), in topological order."""
    parent = {op: op for op in graph.topological_order}

    def find(op: str) -> str:
        while parent[op] != op:
            parent[op] = parent[parent[op]]
            op = parent[op]
        return op

    for edge in graph.spec.edges:
        if edge.partitioning == Partitioning.forward:
            parent[find(edge.dst)] = find(edge.src)
    groups: dict[str, list[str]] = {}
    for op in graph.topological_order:
        groups.setdefault(find(op), []).append(op)
    return list(groups.values())


def _base_rate(graph: JobGraph, peak_parallelism: float) -> float:
    """The total source rate at which the most loaded operator needs about `peak_parallelism` instances."""
    unit = demand_rps(graph, graph.source_rates(1.0))
    load = max(unit[op] * graph.operator(op).cost_us / 1e6 for op in graph.topological_order)
    return peak_parallelism / load


def _plan_window(kind: str, oracle_groups: list[int], rng: np.random.Generator) -> list[int]:
    """Parallelism per forward group for one window of the given provisioning kind."""
    oracle = np.asarray(oracle_groups, dtype=float)
    n = len(oracle)
    if kind == "under_one":
        # One group (that can go lower) under its oracle, all others comfortably above theirs.
        p = np.ceil(oracle * rng.uniform(1.0, 1.6, n))
        candidates = [i for i in range(n) if oracle[i] >= 2] or list(range(n))
        i = int(rng.choice(candidates))
        p[i] = math.floor(oracle[i] * rng.uniform(0.3, 0.8))
    elif kind == "under_all":
        p = np.floor(oracle * rng.uniform(0.4, 0.95, n))
    elif kind == "near":
        # At or just above the oracle, and in a third of the windows one group a step below it.
        p = oracle + rng.choice([0, 1, 1], n)
        if rng.random() < 1 / 3:
            i = int(rng.integers(n))
            p[i] = oracle[i] - 1
    elif kind == "over":
        p = np.ceil(oracle * rng.uniform(1.2, 2.5, n))
    else:
        raise ValueError(f"unknown window kind {kind!r}")
    return [max(1, int(x)) for x in p]


def _no_slower(graph: JobGraph, group: list[str], p: int, oracle_p: int) -> int:
    """The largest parallelism in [oracle_p, p] at which no operator of the group is slower than at oracle_p.

    With key skew or coherency costs (USL kappa) capacity falls past a peak, so "more instances" is only
    over-provisioning while it is also more capacity.
    """
    floor = {op: capacity_rps(graph, op, oracle_p) for op in group}
    while p > oracle_p and any(capacity_rps(graph, op, p) < floor[op] for op in group):
        p -= 1
    return p


def _draw_feasible(family: Family, rng: np.random.Generator, name: str) -> tuple[JobSpec, str, dict[str, int]]:
    """A spec of the family at a rate its oracle can meet within each operator's max parallelism."""
    spec, variant = draw_spec(family, rng, name=name)
    graph = JobGraph(spec)
    rate = _base_rate(graph, rng.uniform(*_PEAK_PARALLELISM))
    for _ in range(4):
        spec = spec.model_copy(update={"workload": Workload(rate_rps=round(rate, 1))})
        oracle = oracle_parallelism(spec)
        if oracle.feasible:
            return spec, variant, oracle.parallelism
        # Skew or sub-linear scaling caps some operator below its demand: scale the rate to what the
        # tightest of them can carry at its peak, with a margin (demand is linear in the rate).
        graph = JobGraph(spec)
        fits = min(
            capacity_rps(graph, op, oracle.parallelism[op]) / oracle.demand_rps[op] for op in oracle.infeasible_operators
        )
        rate *= 0.9 * min(fits, 0.95)
    return spec, variant, oracle.parallelism


def simulate_run(seed: int, index: int, families: Sequence[Family] = FAMILIES, *, noise: float = 0.02) -> GeneratedRun:
    """Run `index` of a history generated with `seed`: draw a job, then measure each window of WINDOW_PLAN."""
    rng = np.random.default_rng([seed, index])
    family = families[int(rng.integers(len(families)))]
    run_id = run_id_for(seed, index)
    spec, variant, oracle = _draw_feasible(family, rng, name=f"{family.name}-{index:06d}")
    graph = JobGraph(spec)
    groups = forward_groups(graph)
    oracle_groups = [max(oracle[op] for op in group) for group in groups]
    oracle_full = {op: p for group, p in zip(groups, oracle_groups) for op in group}
    spec = spec.with_parallelism(oracle_full)
    graph = JobGraph(spec)

    plan = list(WINDOW_PLAN)
    rng.shuffle(plan)
    windows: list[Observation] = []
    with make_executor("sim", seed=int(rng.integers(2**31)), noise=noise) as executor:  # type: ignore[attr-defined]
        for kind in plan:
            group_p = _plan_window(kind, oracle_groups, rng)
            if kind == "over":
                group_p = [_no_slower(graph, group, p, o) for group, p, o in zip(groups, group_p, oracle_groups)]
            parallelism = {op: p for group, p in zip(groups, group_p) for op in group}
            # The offered rate moves a little between windows, as real traffic does, but never across the
            # oracle's rate in the direction that would undo the window's provisioning.
            low, high = _RATE_JITTER[kind.split("_")[0]]
            rate = spec.workload.rate_rps * float(rng.uniform(low, high))
            window_spec = spec.model_copy(update={"workload": Workload(rate_rps=rate)})
            # Each window is a steady-state sample of its provisioning: the job starts afresh (close, then
            # deploy), so no backlog from an earlier window turns into catch-up load in this one.
            executor.close()
            executor.deploy(window_spec, parallelism)
            windows.append(executor.observe())
    return GeneratedRun(run_id, family.name, variant, spec, graph, seed, windows, plan, oracle_full)


def _simulate_chunk(seed: int, indices: Sequence[int], family_names: tuple[str, ...], noise: float) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """The given runs as history tables; runs in a worker process, so it takes and returns plain data."""
    families = [next(f for f in FAMILIES if f.name == name) for name in family_names]
    builder = RunsBuilder()
    counts: dict[str, int] = {}
    for index in indices:
        run = simulate_run(seed, index, families, noise=noise)
        builder.add_run(
            run.run_id,
            run.spec,
            run.windows,
            origin="generate",
            executor="sim",
            family=run.family,
            variant=run.variant,
            seed=run.seed,
            graph=run.graph,
        )
        counts[run.family] = counts.get(run.family, 0) + 1
    runs, rows = builder.tables()
    return runs, rows, counts


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:
    """Pool worker initializer: the worker ends when the generating process ends, even by kill -9.

    On Linux the kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); elsewhere a daemon
    thread watches the parent's pid. Either way a parent that died before this ran is noticed at once.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:
        os._exit(1)
    if not armed:
        def watch() -> None:
            while os.getppid() == parent_pid:
                threading.Event().wait(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def default_workers(jobs: int) -> int:
    """Worker processes for `jobs` runs: one per available core, but one per ~250 runs at most (start-up cost)."""
    return max(1, min(available_cores(), 8, jobs // 250))


def capped_workers(requested: int, chunks: int) -> int:
    """A requested worker count made safe: never more processes than chunks of work or available cores.

    `--workers 100000` must not fork 100000 interpreters: extra processes would only wait for work.
    """
    if requested < 1:
        raise ValueError(f"workers must be >= 1, got {requested}")
    return max(1, min(requested, chunks, available_cores()))


def generate_history(
    out: str | Path,
    *,
    jobs: int,
    seed: int = 0,
    families: Sequence[Family] = FAMILIES,
    noise: float = 0.02,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    runs_per_part: int = _RUNS_PER_PART,
) -> GenerateSummary:
    """Make the history at `out` (created if needed) hold runs 0..jobs-1 of `seed`, one atomic part per block
    of `runs_per_part` runs.

    Resumable and idempotent: runs already present (from an interrupted or shorter generation with this seed)
    are skipped, so running the same command again after a kill finishes the work, and running it once more
    writes nothing. Each block's missing runs become one part, written whole or not at all. The result does
    not depend on `workers`: chunks of runs are simulated in parallel and written in order.
    """
    if jobs < 1:
        raise ValueError("jobs must be >= 1")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if runs_per_part < 1:
        raise ValueError(f"runs_per_part must be >= 1, got {runs_per_part}")
    names = tuple(f.name for f in families)
    store = HistoryStore.create(out)
    store.remove_stale_temporaries()  # of a generation killed before it could clean up
    present = store.run_ids()
    summary = GenerateSummary(out=Path(out), runs=0, rows=0)
    chunk = max(1, min(50, runs_per_part))
    # Blocks of runs_per_part consecutive runs, each written as one part; within a block, chunks of work.
    blocks: list[list[list[int]]] = []
    for block_start in range(0, jobs, runs_per_part):
        todo = [i for i in range(block_start, min(block_start + runs_per_part, jobs)) if run_id_for(seed, i) not in present]
        summary.already_present += min(block_start + runs_per_part, jobs) - block_start - len(todo)
        if todo:
            blocks.append([todo[j : j + chunk] for j in range(0, len(todo), chunk)])
    if progress is not None and summary.already_present:
        progress(summary.already_present)
    chunks = [c for block in blocks for c in block]
    if not chunks:
        return summary
    workers = capped_workers(default_workers(sum(map(len, chunks))) if workers is None else workers, len(chunks))

    def write_block(results: list[tuple[pa.Table, pa.Table, dict[str, int]]]) -> None:
        runs = pa.concat_tables([r[0] for r in results])
        rows = pa.concat_tables([r[1] for r in results])
        summary.parts.append(store.append(runs, rows))
        summary.runs += runs.num_rows
        summary.rows += rows.num_rows
        for _, _, counts in results:
            for name, count in counts.items():
                summary.families[name] = summary.families.get(name, 0) + count

    def run_blocks(simulate: Callable[[list[int]], tuple[pa.Table, pa.Table, dict[str, int]]]) -> None:
        for block in blocks:
            results = []
            for indices in block:
                results.append(simulate(indices))
                if progress is not None:
                    progress(len(indices))
            write_block(results)

    if workers == 1:
        run_blocks(lambda indices: _simulate_chunk(seed, indices, names, noise))
    else:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),))
        try:
            futures = iter([pool.submit(_simulate_chunk, seed, indices, names, noise) for indices in chunks])
            run_blocks(lambda indices: next(futures).result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    summary.families = dict(sorted(summary.families.items()))
    return summary
