"""Small job builders for tuner and executor tests (hand-computable chains); used by the conformance suite."""

from __future__ import annotations

from typing import Any

from streamtune_cli.spec.models import JobSpec, Scaling

__all__ = ["chain_spec", "linear_scaling", "hide_ground_truth", "check_tuner_is_blind"]


def chain_spec(
    stages: list[tuple[str, str, float, float]],
    *,
    rate_rps: float,
    name: str = "chain",
    sigma: float | None = 0.0,
    kappa: float | None = 0.0,
    parallelism: int = 1,
    max_parallelism: int = 128,
    restart_s: float = 10.0,
    partitioning: str = "forward",
    schedule: dict[str, Any] | None = None,
) -> JobSpec:
    """A straight chain from (id, kind, cost_us, selectivity) stages; the first must be a source, the last a sink.

    sigma/kappa set every operator's USL parameters (0, 0 = linear scaling; None = the kind's default).
    """
    operators = []
    for op_id, kind, cost_us, selectivity in stages:
        op: dict[str, Any] = {
            "id": op_id,
            "kind": kind,
            "cost_us": cost_us,
            "parallelism": parallelism,
            "max_parallelism": max_parallelism,
        }
        if kind != "sink":
            op["selectivity"] = selectivity
        scaling = {k: v for k, v in (("sigma", sigma), ("kappa", kappa)) if v is not None}
        if scaling:
            op["scaling"] = scaling
        operators.append(op)
    edges = [
        {"from": a[0], "to": b[0], "partitioning": partitioning} for a, b in zip(stages, stages[1:])
    ]
    workload: dict[str, Any] = {"rate_rps": rate_rps}
    if schedule is not None:
        workload["schedule"] = schedule
    return JobSpec.model_validate(
        {"name": name, "restart_s": restart_s, "workload": workload, "operators": operators, "edges": edges}
    )


def linear_scaling(spec: JobSpec) -> JobSpec:
    """The same job with sigma = kappa = 0 everywhere and no key skew: capacity = p x 1e6 / cost_us."""
    ops = [op.model_copy(update={"scaling": Scaling(sigma=0.0, kappa=0.0), "key_skew": None}) for op in spec.operators]
    return spec.model_copy(update={"operators": ops})


def hide_ground_truth(spec: JobSpec, factor: float = 1.7) -> JobSpec:
    """The same job as a tuner sees it, with every hidden field changed: cost hints, selectivity, record
    sizes, scaling, key skew and restart time. Topology, kinds, keys, max parallelism, source shares and
    the workload stay, so JobView.from_spec gives the same view of both."""
    from streamtune_cli.spec.models import KeySkew, OperatorKind

    operators = []
    for op in spec.operators:
        update: dict[str, Any] = {
            "cost_us": op.cost_us * factor,
            "record_bytes": (op.record_bytes or 64) * 2,
            "scaling": Scaling(sigma=0.2, kappa=0.01),
            "key_skew": KeySkew(zipf_s=1.3, keys=777) if op.key_skew is None else None,
        }
        if op.kind != OperatorKind.sink:
            update["selectivity"] = op.selectivity / factor if op.selectivity > 0 else 0.5
        operators.append(op.model_copy(update=update))
    return spec.model_copy(update={"operators": operators, "restart_s": spec.restart_s * factor + 1.0})


class _TruthExecutor:
    """Runs the *true* job whatever spec the loop deploys: the tuner's observations depend only on the
    truth and on the tuner's own decisions, never on the spec the loop was given."""

    name = "truth"

    def __init__(self, truth: JobSpec, seed: int):
        from streamtune_cli.executors.sim import SimExecutor

        self.truth = truth
        self.sim = SimExecutor(seed=seed, noise=0.02)

    def deploy(self, job: JobSpec, parallelism: dict[str, int]) -> None:
        self.sim.deploy(self.truth, parallelism)

    def peak_target_rate_rps(self, job: JobSpec) -> float:
        return self.sim.peak_target_rate_rps(self.truth)

    def observe(self) -> Any:
        return self.sim.observe()

    def close(self) -> None:
        self.sim.close()


def check_tuner_is_blind(make_tuner: Any, spec: JobSpec, *, max_steps: int = 6, seed: int = 0) -> None:
    """Raise AssertionError unless the tuner decides the same with the hidden fields of `spec` changed.

    Two tuning sessions see exactly the same measurements (the true job runs in both); one is given the
    true spec, the other hide_ground_truth(spec). A tuner that reads cost hints, selectivity, scaling, skew
    or restart time from anywhere (the spec, the loop's frames, a file) decides differently and fails.
    """
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning
    from streamtune_cli.tuning.view import JobView

    altered = hide_ground_truth(spec)
    if JobView.from_spec(spec).signature() != JobView.from_spec(altered).signature():
        raise AssertionError("hide_ground_truth changed what a tuner may see")
    decisions = []
    for given in (spec, altered):
        executor = _TruthExecutor(spec, seed)
        try:
            trace = run_tuning(given, executor, make_tuner(), TuningConfig(max_steps=max_steps), seed=seed)
        finally:
            executor.close()
        decisions.append([(s.parallelism, s.decision.parallelism if s.decision else None) for s in trace.steps])
    if decisions[0] != decisions[1]:
        step = next(i for i, (a, b) in enumerate(zip(*decisions)) if a != b) if len(decisions[0]) == len(decisions[1]) else 0
        raise AssertionError(
            f"tuner decisions depend on hidden ground truth (cost hints, selectivity, scaling, skew, restart "
            f"time): with the same measurements they differ from step {step} on"
        )
