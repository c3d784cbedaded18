"""The tuning loop: deploy -> observe -> propose -> clamp to safety bounds -> stop or redeploy; returns a Trace."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

from streamtune_cli.definitions import measured_drain_s
from streamtune_cli.errors import UsageError
from streamtune_cli.executors.base import (
    Decision,
    Executor,
    Observation,
    Parallelism,
    Trace,
    TraceStep,
)
from streamtune_cli.spec.loader import spec_to_data
from streamtune_cli.spec.models import MAX_PARALLELISM_BOUND, JobSpec
from streamtune_cli.tuning.parallelism import (
    cap_of,
    complete_parallelism,
    retarget_parallelism,
)
from streamtune_cli.tuning.tuners.base import Tuner
from streamtune_cli.tuning.view import JobView

__all__ = [
    "TuningConfig",
    "run_tuning",
    "clamp_parallelism",
    "retarget_parallelism",
    "covers_peak",
    "STOP_REASONS",
]

# A window's target counts as the peak target within this relative float round-off.
_PEAK_TOLERANCE = 1e-9

STOP_REASONS = {
    "converged": "no change proposed and the job keeps up, with enough headroom for the workload's peak",
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
        if self.max_parallelism is not None and not 1 <= self.max_parallelism <= MAX_PARALLELISM_BOUND:
            raise UsageError(
                f"max_parallelism must be between 1 and {MAX_PARALLELISM_BOUND} (Flink's upper bound), "
                f"got {self.max_parallelism}"
            )
        f = self.max_change_factor
        if f is not None and not (math.isfinite(f) and f >= 1.0):
            raise UsageError(f"max_change_factor must be a finite number >= 1 (x F up or / F down per step), got {f}")
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
        cap = cap_of(op, config.max_parallelism)
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


def covers_peak(observation: Observation, peak_target_rps: float) -> bool:
    """The window kept up, and what it measured shows the deployment keeps up at the peak target as well.

    A window run at the peak target covers it by keeping up. A window below the peak covers it when its
    busiest instance, scaled to the peak, stays within capacity: at a fixed parallelism every operator's
    load is proportional to the source rate, so busy_max x peak / target is the busiest instance's load at
    the peak. No allowance here: keeping up is strict (definitions.keeps_up), the scaling multiplies the
    measurement error too, and a trough that only seems to fit must not end the session (a later window at
    the peak settles it).
    """
    if observation.backpressured:
        return False
    target = observation.target_rate_rps
    if target >= peak_target_rps * (1 - _PEAK_TOLERANCE):
        return True
    if target <= 0:
        return False
    busiest = max(m.busy_max for m in observation.operators.values())
    return busiest * (peak_target_rps / target) <= 1.0


def run_tuning(
    spec: JobSpec,
    executor: Executor,
    tuner: Tuner,
    config: TuningConfig | None = None,
    *,
    seed: int | None = None,
    on_step: Callable[[TraceStep], None] | None = None,
    initial_parallelism: dict[str, int] | None = None,
    peak_target_rate_rps: float | None = None,
    deployed: bool = False,
    prior_steps: list[TraceStep] | None = None,
) -> Trace:
    """Tune `spec` on `executor` with `tuner` until the stop rule fires; the caller closes the executor.

    Each step observes one window of the deployed parallelism, asks the tuner, clamps its proposal to the
    bounds (recording why in the reasons), then stops (see STOP_REASONS) or redeploys. A change proposed at
    the last step is recorded but not deployed, so the final parallelism is always one that was observed.

    The tuner sees a JobView of the spec (topology, kinds, keys, partitioning, max parallelism), never the
    spec itself: cost hints, selectivity, scaling and skew are the executor's ground truth.

    Under a varying schedule, a window that keeps up in a trough says nothing about the peak: the session
    converges only on a window that covers the peak target (covers_peak), which defaults to
    executor.peak_target_rate_rps(spec) (base rate x the schedule's highest factor). Until then it keeps
    observing without redeploying, bounded by max_steps. The oracle and `target_met` are at that peak.

    Continuous tuning: with `deployed`, the executor already runs the job at `initial_parallelism` (a
    previous session's final deployment) and nothing is redeployed at the start; `prior_steps` are that
    job's earlier measurements, which the tuner sees as history before this session's own steps.
    """
    config = config or TuningConfig()
    peak_rps = executor.peak_target_rate_rps(spec) if peak_target_rate_rps is None else float(peak_target_rate_rps)
    if not (math.isfinite(peak_rps) and peak_rps > 0):
        raise UsageError(f"the peak target rate must be a finite number > 0, got {peak_rps}")
    start = complete_parallelism(spec, initial_parallelism)
    # The starting point obeys the caps too; the change factor only limits moves between steps.
    current, initial_notes = clamp_parallelism(spec, start, start, TuningConfig(max_parallelism=config.max_parallelism))
    if deployed and current != start:
        raise UsageError("a deployed starting point must already obey the parallelism caps")
    view = JobView.from_spec(spec)
    prior = list(prior_steps or [])
    start_session = getattr(tuner, "start_session", None)
    if callable(start_session):
        start_session()  # optional hook: a tuner that keeps state across sessions learns where this one starts

    def deploy(parallelism: dict[str, int]) -> None:
        executor.deploy(retarget_parallelism(spec, parallelism), parallelism)

    if not deployed:
        deploy(current)
    steps: list[TraceStep] = []
    reconfigurations = 0
    stable = stalled = 0
    stop_reason = "max_steps"
    for index in range(config.max_steps):
        observation = executor.observe()
        decision = tuner.propose(view, dict(current), observation, prior + steps)
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
                stalled = 0
                # Kept up below the peak without the headroom to be sure of it: look again later (the
                # schedule moves on) rather than call a trough converged.
                stable = stable + 1 if covers_peak(observation, peak_rps) else 0
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
        deploy(current)
        reconfigurations += 1

    meta = _trace_meta(spec, config, steps, current, reconfigurations, stop_reason, start, initial_notes, peak_rps)
    return Trace(
        job=spec.name, spec=spec_to_data(spec), executor=executor.name, tuner=tuner.name, seed=seed, steps=steps, meta=meta
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
    peak_rps: float,
) -> dict[str, Any]:
    from streamtune_cli.tuning.oracle import oracle_data, oracle_parallelism

    last = steps[-1].observation
    oracle = oracle_parallelism(spec, peak_rps, max_parallelism=config.max_parallelism)
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
        # At the peak target: the final deployment kept up in its last window with headroom for the peak.
        "target_met": covers_peak(last, peak_rps),
        "last_window_kept_up": last.keeps_up,
        "peak_target_rate_rps": peak_rps,
        "final_target_rate_rps": last.target_rate_rps,
        "backpressured_windows": sum(1 for s in steps if s.observation.backpressured),
        "final_lag_records": last.lag_records,
        # As measured: the lag left over the rate the last window drained it at (None: not draining).
        "final_drain_s": measured_drain_s(last.lag_records, last.achieved_rate_rps, last.target_rate_rps),
        "elapsed_s": last.t_s,
        "oracle": oracle_data(oracle),  # at the peak target, under the same caps
        "config": asdict(config),
    }
