"""ContTune (Lian et al., PVLDB 2023, arXiv 2309.12239): Big-small tuning with conservative Bayesian optimization.

Big phase (job backpressured): every operator to the largest parallelism seen so far, doubled when all
are already there. Small phase: per operator, a Gaussian process on (parallelism, processing ability)
picks the smallest parallelism whose conservative prediction covers the demand, or DS2 when that
choice lies far from anything observed.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np

from streamtune_cli.executors.base import Decision, Observation, Parallelism, TraceStep
from streamtune_cli.tuning.view import JobView
from streamtune_cli.spec.models import MAX_PARALLELISM_BOUND
from streamtune_cli.tuning.tuners.base import (
    bool_option,
    int_option,
    number_option,
    target_input_rates,
    unchanged,
)
from streamtune_cli.tuning.tuners.ds2 import ds2_parallelism

__all__ = ["ContTuneTuner", "processing_ability_points"]


def processing_ability_points(op_id: str, steps: list[tuple[Parallelism, Observation]]) -> dict[int, float]:
    """Mean processing ability per parallelism observed for one operator: input rate / useful time.

    Useful time is the busiest instance's busy fraction: the operator cannot process faster than its
    hottest instance allows (the same choice as the Flink autoscaler's default MAX busy-time aggregator),
    and with an even load it equals the mean.
    """
    samples: dict[int, list[float]] = defaultdict(list)
    for parallelism, observation in steps:
        metrics = observation.operators[op_id]
        if metrics.input_rate_rps > 0 and metrics.busy_max > 0:
            samples[parallelism[op_id]].append(metrics.input_rate_rps / metrics.busy_max)
    # ContTune averages repeated observations at one parallelism ("mean-reversion PA").
    return {p: float(np.mean(v)) for p, v in sorted(samples.items())}


class ContTuneTuner:
    """Big-small algorithm; `k` sets how conservative the GP bound is (mean - k * std), `max_distance` is
    the paper's alpha: the GP's choice is used only within that many instances of an observed parallelism."""

    name = "conttune"

    def __init__(self, *, k: float = 1.96, max_distance: int = 2, optimize_kernel: bool = False, seed: int = 0):
        self.k = number_option("k", k, low=0.0)
        self.max_distance = int_option("max_distance", max_distance, low=0, high=MAX_PARALLELISM_BOUND)
        self.optimize_kernel = bool_option("optimize_kernel", optimize_kernel)
        self.seed = int_option("seed", seed, low=0, high=2**32 - 1)

    def propose(
        self, graph: JobView, parallelism: Parallelism, observation: Observation, history: list[TraceStep]
    ) -> Decision:
        steps = [(s.parallelism, s.observation) for s in history] + [(parallelism, observation)]
        if observation.backpressured:
            return self._big(graph, parallelism, steps)
        from threadpoolctl import threadpool_limits

        # Tiny matrices: BLAS worker threads cost far more than they save (one predict took 11.6 ms with
        # 2 threads and 0.23 ms with 1 on the 2-core development machine).
        with threadpool_limits(1, user_api="blas"):
            return self._small(graph, parallelism, observation, steps)

    def _big(self, graph: JobView, parallelism: Parallelism, steps: list[tuple[Parallelism, Observation]]) -> Decision:
        largest = max(max(p.values()) for p, _ in steps)
        caps = {op: graph.operator(op).max_parallelism for op in parallelism}
        if all(parallelism[op] >= min(largest, caps[op]) for op in parallelism):
            largest *= 2
            how = f"all operators already at {largest // 2}: doubled to {largest}"
        else:
            how = f"largest parallelism seen so far is {largest}"
        proposed = {op: min(largest, caps[op]) for op in parallelism}
        reasons = {op: f"Big phase (job backpressured): {how}" for op in parallelism}
        return Decision(parallelism=proposed, reasons=reasons, summary=f"ContTune Big phase: {how}", converged=False)

    def _small(
        self, graph: JobView, parallelism: Parallelism, observation: Observation, steps: list[tuple[Parallelism, Observation]]
    ) -> Decision:
        ds2, ds2_reasons, _ = ds2_parallelism(graph, parallelism, observation)
        # Not backpressured, so measured inputs are real demand; propagate to the exact target anyway
        # so a window slightly under target does not shrink the estimate.
        demand = target_input_rates(graph, parallelism, observation)
        proposed: dict[str, int] = {}
        reasons: dict[str, str] = {}
        for op_id in graph.topological_order:
            if demand[op_id] <= 0:
                proposed[op_id], reasons[op_id] = 1, "Small phase: no input expected, 1 instance"
                continue
            points = processing_ability_points(op_id, steps)
            cap = graph.operator(op_id).max_parallelism
            choice = self._gp_choice(points, demand[op_id], cap)
            if choice is None:
                proposed[op_id] = ds2[op_id]
                reasons[op_id] = f"Small phase: GP bound never covers {demand[op_id]:,.0f} rec/s; DS2: {ds2_reasons[op_id]}"
                continue
            p, lower = choice
            distance = min(abs(p - q) for q in points)
            if distance > self.max_distance:
                proposed[op_id] = ds2[op_id]
                reasons[op_id] = (
                    f"Small phase: GP suggests {p}, {distance} away from any observed parallelism "
                    f"(> {self.max_distance}); DS2: {ds2_reasons[op_id]}"
                )
            else:
                proposed[op_id] = p
                reasons[op_id] = (
                    f"Small phase: GP lower bound {lower:,.0f} rec/s at p={p} covers demand {demand[op_id]:,.0f} rec/s "
                    f"({len(points)} observed parallelism(s))"
                )
        converged = unchanged(parallelism, proposed)
        return Decision(
            parallelism=proposed,
            reasons=reasons,
            summary="ContTune Small phase: conservative GP per operator" + (" (no change)" if converged else ""),
            converged=converged,
        )

    def _gp_choice(self, points: dict[int, float], demand_rps: float, cap: int) -> tuple[int, float] | None:
        """Smallest p with p x (mean - k x std) of the per-instance ability >= demand, and that bound.

        The GP models ability per instance around its observed mean, so far from the data it predicts
        DS2's linear scaling while its uncertainty grows; candidates beyond max_distance from every
        observed parallelism are rejected anyway, so the search stops there. None when nothing covers.
        """
        if not points:
            return None
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        ps = np.array(sorted(points), dtype=float)
        per_instance = np.array([points[int(p)] / p for p in ps])
        mean_rate = float(per_instance.mean())
        kernel = ConstantKernel(0.05, (1e-4, 1.0)) * RBF(length_scale=4.0, length_scale_bounds=(1.0, 100.0)) + WhiteKernel(
            1e-3, (1e-6, 1e-1)
        )
        # Fixed hyperparameters by default: the target is dimensionless (relative to the mean rate), and
        # marginal-likelihood fitting makes a whole run several times slower (docs/tuners.md).
        optimizer = "fmin_l_bfgs_b" if self.optimize_kernel else None
        model = GaussianProcessRegressor(kernel=kernel, optimizer=optimizer, random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(ps.reshape(-1, 1), per_instance / mean_rate - 1.0)
        last = min(cap, int(ps.max()) + self.max_distance)
        grid = np.arange(1, last + 1, dtype=float)
        mean, std = model.predict(grid.reshape(-1, 1), return_std=True)
        lower = grid * (1.0 + mean - self.k * std) * mean_rate
        ok = np.nonzero(lower >= demand_rps)[0]
        if ok.size == 0:
            return None
        i = int(ok[0])
        return i + 1, float(lower[i])
