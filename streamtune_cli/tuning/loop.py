"""The tuning loop: deploy -> observe -> propose -> clamp to safety bounds -> stop or redeploy; returns a Trace."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

from streamtune_cli.errors import UsageError
from streamtune_cli.executors.base import Decision, Executor, Parallelism, Trace, TraceStep
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.loader import spec_to_data
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.tuning.parallelism import complete_parallelism, operator_cap, retarget_parallelism
from streamtune_cli.tuning.tuners.base import Tuner

__all__ = ["TuningConfig", "run_tuning", "clamp_parallelism", "retarget_parallelism", "STOP_REASONS", "TARGET_MET_RATIO"]

# A window meets the target when the sources ingest at least this share of it (Observation.backpressured).
TARGET_MET_RATIO = 0.98

STOP_REASONS = {
    "converged": "no change proposed and the job keeps up",
    "tuner_converged": "the tuner declared convergence",
    "at_bounds": "the tuner wants more, but the safety bounds hold every operator where it is",
    "stalled": "no change proposed although the job is backpressured (stall_patience windows in a row)",
    "max_steps": "step budget used up",
    "dry_run": "dry run: one recommendation, nothing redeployed",
}


@dataclass
class TuningConfig:
    """Safety bounds and stop rule of one tuning session."""

    max_steps: int = 10
    max_parallelism: int | None = None  # global cap; else each operator's max_parallelism
    max_change_factor: float | None = None  # e.g. 4.0: at most x4 up or /4 down per step
    dry_run: bool = False
    stop_after_stable: int = 1  # consecutive unchanged, unbackpressured windows needed to stop
    # Consecutive windows in which the tuner proposes no change although the job is backpressured before
    # giving up: a fresh window gives a tuner misled by measurement noise a second look, without a restart.
    stall_patience: int = 2

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise UsageError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.max_parallelism is not None and self.max_parallelism < 1:
            raise UsageError(f"max_parallelism must be >= 1, got {self.max_parallelism}")
        if self.max_change_factor is not None and not self.max_change_factor >= 1.0:
            raise UsageError(f"max_change_factor must be >= 1 (x F up or / F down per step), got {self.max_change_factor}")
        if self.stop_after_stable < 1:
            raise UsageError(f"stop_after_stable must be >= 1, got {self.stop_after_stable}")
        if self.stall_patience < 1:
            raise UsageError(f"stall_patience must be >= 1, got {self.stall_patience}")


def clamp_parallelism(
    spec: JobSpec, current: Parallelism, proposed: Parallelism, config: TuningConfig
) -> tuple[dict[str, int], dict[str, str]]:
    """Apply the bounds to a proposal: (clamped full map, note per clamped operator)."""
    clamped: dict[str, int] = {}
    notes: dict[str, str] = {}
    for op in spec.operators:
        p = current[op.id]
        wanted = int(proposed.get(op.id, p))
        cap = operator_cap(spec, op.id, config.max_parallelism)
        low, high, why_low, why_high = 1, cap, "the minimum 1", f"max parallelism {cap}"
        if config.max_change_factor is not None:
            f = config.max_change_factor
            step_low, step_high = max(1, math.ceil(p / f - 1e-9)), math.floor(p * f + 1e-9)
            if step_low > low:
                low, why_low = step_low, f"max change factor {f:g} (at least {step_low} from {p})"
            if step_high < high:
                high, why_high = step_high, f"max change factor {f:g} (at most {step_high} from {p})"
        low = min(low, high)
        value = min(max(wanted, low), high)
        if value != wanted:
            notes[op.id] = f"clamped from {wanted} to {value} by {why_high if wanted > high else why_low}"
        clamped[op.id] = value
    return clamped, notes


def _recorded_decision(decision: Decision, clamped: dict[str, int], notes: dict[str, str]) -> Decision:
    reasons = dict(decision.reasons)
    for op, note in notes.items():
        reasons[op] = f"{reasons[op]}; {note}" if reasons.get(op) else note
    summary = decision.summary + (f" ({len(notes)} operator(s) clamped by safety bounds)" if notes else "")
    return Decision(parallelism=clamped, reasons=reasons, summary=summary, converged=decision.converged)


def run_tuning(
    spec: JobSpec,
    executor: Executor,
    tuner: Tuner,
    config: TuningConfig | None = None,
    *,
    seed: int | None = None,
    on_step: Callable[[TraceStep], None] | None = None,
    initial_parallelism: dict[str, int] | None = None,
) -> Trace:
    """Tune `spec` on `executor` with `tuner` until the stop rule fires; the caller closes the executor.

    Each step observes one window of the deployed parallelism, asks the tuner, clamps its proposal to the
    bounds (recording why in the reasons), then stops (see STOP_REASONS) or redeploys. A change proposed at
    the last step is recorded but not deployed, so the final parallelism is always one that was observed.
    """
    config = config or TuningConfig()
    start = complete_parallelism(spec, initial_parallelism)
    # The starting point obeys the caps too; the change factor only limits moves between steps.
    current, initial_notes = clamp_parallelism(spec, start, start, TuningConfig(max_parallelism=config.max_parallelism))
    graphs: dict[tuple[int, ...], JobGraph] = {}

    def deploy(parallelism: dict[str, int]) -> JobGraph:
        key = tuple(parallelism[op.id] for op in spec.operators)
        if key not in graphs:
            graphs[key] = JobGraph(retarget_parallelism(spec, parallelism))
        executor.deploy(graphs[key].spec, parallelism)
        return graphs[key]

    graph = deploy(current)
    steps: list[TraceStep] = []
    reconfigurations = 0
    stable = stalled = 0
    stop_reason = "max_steps"
    for index in range(config.max_steps):
        observation = executor.observe()
        decision = tuner.propose(graph, dict(current), observation, list(steps))
        clamped, notes = clamp_parallelism(spec, current, decision.parallelism, config)
        recorded = _recorded_decision(decision, clamped, notes)
        step = TraceStep(step=index, parallelism=dict(current), observation=observation, decision=recorded)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        if config.dry_run:
            stop_reason = "dry_run"
            break
        if clamped == current:
            if not observation.backpressured:
                stable, stalled = stable + 1, 0
                if stable >= config.stop_after_stable:
                    stop_reason = "converged"
                    break
                continue
            stable, stalled = 0, stalled + 1
            if decision.converged:
                stop_reason = "tuner_converged"
                break
            if any(decision.parallelism.get(op, p) != p for op, p in current.items()):
                stop_reason = "at_bounds"  # more windows cannot lift the bounds
                break
            if stalled >= config.stall_patience:
                stop_reason = "stalled"
                break
            continue
        stable = stalled = 0
        if index == config.max_steps - 1:
            break
        current = clamped
        graph = deploy(current)
        reconfigurations += 1

    final_observation = steps[-1].observation
    meta = _trace_meta(spec, config, steps, current, reconfigurations, stop_reason, start, initial_notes)
    return Trace(
        job=spec.name,
        spec=spec_to_data(spec),
        executor=executor.name,
        tuner=tuner.name,
        seed=seed,
        steps=steps,
        meta=meta | {"final_target_rate_rps": final_observation.target_rate_rps},
    )


def _trace_meta(
    spec: JobSpec,
    config: TuningConfig,
    steps: list[TraceStep],
    final: dict[str, int],
    reconfigurations: int,
    stop_reason: str,
    start: dict[str, int],
    initial_notes: dict[str, str],
) -> dict[str, Any]:
    from streamtune_cli.tuning.oracle import oracle_parallelism

    last = steps[-1].observation
    oracle = oracle_parallelism(spec, last.target_rate_rps, max_parallelism=config.max_parallelism)
    recommended = steps[-1].decision.parallelism if steps[-1].decision is not None else dict(final)
    return {
        "stop_reason": stop_reason,
        "stop_detail": STOP_REASONS[stop_reason],
        "converged": stop_reason in ("converged", "tuner_converged"),
        "reconfigurations": reconfigurations,
        "steps": len(steps),
        "initial_parallelism": dict(start),
        "initial_clamped": initial_notes,
        "final_parallelism": dict(final),
        "final_total": sum(final.values()),
        "recommended_parallelism": dict(recommended),
        "target_met": last.achieved_rate_rps >= TARGET_MET_RATIO * last.target_rate_rps,
        "backpressured_windows": sum(1 for s in steps if s.observation.backpressured),
        "final_lag_records": last.lag_records,
        "elapsed_s": last.t_s,
        "oracle": {
            "parallelism": oracle.parallelism,
            "total": oracle.total,
            "feasible": oracle.feasible,
            "rate_rps": oracle.rate_rps,
            "reason": oracle.reason,
        },
        "config": asdict(config),
    }
