"""The Flink Kubernetes Operator's autoscaler (flink-autoscaler): utilization-bounded, DS2-style scaling.

Defaults are the operator's (AutoScalerOptions): utilization.target 0.7, target.utilization.boundary 0.3,
scale-down.max-factor 0.6, scale-up.max-factor 100000, catch-up.duration 30 min, busy-time aggregator MAX,
vertex.max-parallelism 200, backlog-processing.lag-threshold 5 min, restart.time 5 min (a tuner is not told
the executor's real restart time; Flink's restart-time tracking is off by default too). Sources are cited in docs/tuners.md.
"""

from __future__ import annotations

import math

from streamtune_cli.executors.base import Decision, Observation, Parallelism, TraceStep
from streamtune_cli.tuning.view import JobView
from streamtune_cli.spec.models import MAX_PARALLELISM_BOUND, Partitioning
from streamtune_cli.tuning.tuners.base import (
    bool_option,
    int_option,
    number_option,
    target_input_rates,
)

__all__ = ["AutoscalerTuner", "align_to_key_groups", "flink_duration_s", "FLINK_OPTION_NAMES"]

# Flink's duration units (org.apache.flink.util.TimeUtils.parseDuration): label -> seconds; plurals take an "s".
_DURATION_UNITS_S = {
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3, "milli": 1e-3, "millis": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "µs": 1e-6, "micro": 1e-6, "micros": 1e-6, "microsecond": 1e-6, "microseconds": 1e-6,
    "ns": 1e-9, "nano": 1e-9, "nanos": 1e-9, "nanosecond": 1e-9, "nanoseconds": 1e-9,
}


def flink_duration_s(text: str) -> float:
    """Seconds in a Flink Duration option value: an integer and a unit ("30 min", "300s", "1 h"); an integer
    without a unit is milliseconds, as in Flink's configuration."""
    stripped = text.strip()
    digits = len(stripped) - len(stripped.lstrip("0123456789"))
    number, unit = stripped[:digits], stripped[digits:].strip().lower()
    if not number:
        raise ValueError(f"expected a Flink duration such as '30 min' or '300 s', got {text!r}")
    if unit and unit not in _DURATION_UNITS_S:
        raise ValueError(f"unknown time unit {unit!r} in {text!r} (units: d, h, min, s, ms, µs, ns)")
    return int(number) * _DURATION_UNITS_S[unit] if unit else int(number) / 1000.0


# The Flink Kubernetes Operator's own option names (AutoScalerOptions, `job.autoscaler.` prefix) for the
# options this tuner has: name -> (option, converter of the text value; None: the option's own type).
# Durations are read as Flink reads them. `target.utilization` is Flink's deprecated spelling of
# `utilization.target`; the `kubernetes.operator.job.autoscaler.` prefix is its older fallback prefix.
FLINK_OPTION_NAMES = {
    "utilization.target": ("target_utilization", None),
    "target.utilization": ("target_utilization", None),
    "target.utilization.boundary": ("utilization_boundary", None),
    "scale-down.max-factor": ("max_scale_down_factor", None),
    "scale-up.max-factor": ("max_scale_up_factor", None),
    "catch-up.duration": ("catch_up_s", flink_duration_s),
    "restart.time": ("restart_s", flink_duration_s),
    "backlog-processing.lag-threshold": ("backlog_threshold_s", flink_duration_s),
    "vertex.max-parallelism": ("vertex_max_parallelism", None),
}


def align_to_key_groups(new_p: int, current_p: int, key_groups: int, lower: int, upper: int) -> int:
    """Flink's EVENLY_SPREAD alignment for keyed (hash) inputs: prefer a divisor of the key-group count.

    Search upward from new_p (not past current_p when scaling down) for a divisor of key_groups; failing
    that, step down to where the per-instance key-group count changes. Never invert the scaling direction.
    """
    if new_p == current_p:
        return new_p
    scale_up = new_p > current_p
    upper_align = min(key_groups, upper)
    search_to = upper_align if scale_up else min(current_p, upper_align)
    for p in range(new_p, search_to + 1):
        if key_groups % p == 0:
            return p
    p = new_p
    while p > 0:
        if key_groups // p > key_groups // new_p:
            if key_groups % p != 0:
                p += 1
            break
        p -= 1
    p = max(p, lower)
    if (scale_up and p <= current_p) or (not scale_up and p >= current_p):
        return current_p
    return p


class AutoscalerTuner:
    """Per vertex: TPR = input rate / max busy fraction; scale by targetCapacity / TPR when any vertex's
    TPR leaves [capacity at utilization max, capacity at utilization min]."""

    name = "autoscaler"
    # Accepted by `tune --tuner-option KEY=VALUE` next to the option names (tuners.tuner_options_from_text).
    option_aliases = {f"job.autoscaler.{key}": target for key, target in FLINK_OPTION_NAMES.items()}
    legacy_option_aliases = {f"kubernetes.operator.job.autoscaler.{key}": target for key, target in FLINK_OPTION_NAMES.items()}

    def __init__(
        self,
        *,
        target_utilization: float = 0.7,
        utilization_boundary: float = 0.3,
        max_scale_down_factor: float = 0.6,
        max_scale_up_factor: float = 100000.0,
        catch_up_s: float = 1800.0,
        restart_s: float = 300.0,
        backlog_threshold_s: float = 300.0,
        vertex_max_parallelism: int = 200,
        align_key_groups: bool = True,
    ):
        self.target_utilization = number_option("target_utilization", target_utilization, low=0.0, low_open=True, high=1.0)
        self.utilization_boundary = number_option("utilization_boundary", utilization_boundary, low=0.0, high=1.0)
        self.max_scale_down_factor = number_option("max_scale_down_factor", max_scale_down_factor, low=0.0, high=1.0)
        self.max_scale_up_factor = number_option("max_scale_up_factor", max_scale_up_factor, low=0.0)
        self.catch_up_s = number_option("catch_up_s", catch_up_s, low=0.0)
        self.restart_s = number_option("restart_s", restart_s, low=0.0)
        self.backlog_threshold_s = number_option("backlog_threshold_s", backlog_threshold_s, low=0.0)
        self.vertex_max_parallelism = int_option(
            "vertex_max_parallelism", vertex_max_parallelism, low=1, high=MAX_PARALLELISM_BOUND
        )
        self.align_key_groups = bool_option("align_key_groups", align_key_groups)

    def _capacity(
        self, target_rps: float, catch_up_rps: float, utilization: float, restart_s: float, with_restart: bool
    ) -> float:
        """Target processing capacity: lag catch-up + restart catch-up + input at the given utilization."""
        if utilization <= 0:
            return math.inf
        restart_catch_up = target_rps * restart_s / self.catch_up_s if with_restart and self.catch_up_s > 0 else 0.0
        return catch_up_rps + restart_catch_up + target_rps / min(1.0, utilization)

    def propose(
        self, graph: JobView, parallelism: Parallelism, observation: Observation, history: list[TraceStep]
    ) -> Decision:
        restart_s = self.restart_s
        targets = target_input_rates(graph, parallelism, observation)
        # Backlog catch-up rate propagates like the target rate (scaled by the same output ratios).
        lag_rate = observation.lag_records / self.catch_up_s if self.catch_up_s > 0 else 0.0
        catch_up = target_input_rates(graph, parallelism, observation, source_total_rps=lag_rate)
        achieved = max(observation.achieved_rate_rps, 1e-9)
        backlog = observation.lag_records / achieved > self.backlog_threshold_s
        if backlog:
            upper, lower = 1.0, 0.0
        else:
            upper = self.target_utilization + self.utilization_boundary
            lower = self.target_utilization - self.utilization_boundary
        proposed: dict[str, int] = {}
        reasons: dict[str, str] = {}
        any_outside = False
        for op_id in graph.topological_order:
            p = parallelism[op_id]
            metrics = observation.operators[op_id]
            if metrics.input_rate_rps <= 0:
                tpr = math.inf  # nothing flows in: the autoscaler assumes unlimited capacity
            elif metrics.busy_max <= 0:
                proposed[op_id], reasons[op_id] = p, "no busy time measured: no change"
                continue
            else:
                tpr = metrics.input_rate_rps / metrics.busy_max
            target, lag_part = targets[op_id], catch_up[op_id]
            scale_up_threshold = self._capacity(target, lag_part, upper, restart_s, with_restart=False)
            scale_down_threshold = self._capacity(target, lag_part, lower, restart_s, with_restart=True)
            outside = tpr < scale_up_threshold or tpr > scale_down_threshold
            target_capacity = self._capacity(target, lag_part, self.target_utilization, restart_s, with_restart=True)
            factor = target_capacity / tpr if math.isfinite(tpr) else 0.0
            factor = min(max(factor, 1.0 - self.max_scale_down_factor), 1.0 + self.max_scale_up_factor)
            op = graph.operator(op_id)
            upper_p = min(op.max_parallelism, max(p, self.vertex_max_parallelism))
            new_p = min(max(1, math.ceil(factor * p)), upper_p)
            keyed = any(e.partitioning == Partitioning.hash for e in graph.in_edges(op_id))
            if self.align_key_groups and keyed:
                new_p = align_to_key_groups(new_p, p, op.max_parallelism, 1, upper_p)
            any_outside |= outside and new_p != p
            proposed[op_id] = new_p
            tpr_text = "unbounded" if not math.isfinite(tpr) else f"{tpr:,.0f} rec/s"
            reasons[op_id] = (
                f"TPR {tpr_text} (max busy {metrics.busy_max:.2f}) vs target capacity {target_capacity:,.0f} rec/s "
                f"-> factor {factor:.2f} -> {new_p}" + ("" if outside else "; within utilization bounds")
            )
        if not any_outside:
            return Decision(
                parallelism=dict(parallelism),
                reasons={op: r + "; no vertex outside its bounds, no scaling" for op, r in reasons.items()},
                summary="autoscaler: all vertex processing rates are within the utilization bounds",
                converged=not observation.backpressured,
            )
        changed = sum(1 for op in proposed if proposed[op] != parallelism[op])
        return Decision(
            parallelism=proposed,
            reasons=reasons,
            summary=f"autoscaler: {changed} vertex(es) rescaled toward utilization {self.target_utilization}",
            converged=False,
        )
