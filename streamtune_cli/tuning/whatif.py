"""What-if analysis: one simulated window of a job at a chosen parallelism, its bottlenecks, and the oracle."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from streamtune_cli.errors import UsageError
from streamtune_cli.executors.base import Observation
from streamtune_cli.executors.registry import make_executor
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.tuning.oracle import OracleResult, oracle_data, oracle_parallelism
from streamtune_cli.tuning.parallelism import complete_parallelism

if TYPE_CHECKING:
    from streamtune_cli.executors.sim import SimExecutor

__all__ = ["WhatIf", "what_if"]


@dataclass(frozen=True)
class WhatIf:
    parallelism: dict[str, int]
    observation: Observation
    saturated: tuple[str, ...]
    bottlenecks: tuple[str, ...]  # saturated operators with no saturated operator downstream
    headroom: float  # capacity / demand of the tightest operator at the target rate (>= 1: keeps up)
    oracle: OracleResult  # at this window's target rate
    base_rate_rps: float  # the rate the schedule multiplies (--rate, else the spec's)
    peak_target_rate_rps: float  # base rate x the schedule's peak factor
    peak_oracle: OracleResult  # at the peak target (the one `tune` and `fuse` use)

    def to_data(self) -> dict[str, Any]:
        return {
            "parallelism": self.parallelism,
            "observation": self.observation.model_dump(mode="json"),
            "saturated": list(self.saturated),
            "bottlenecks": list(self.bottlenecks),
            # JSON has no infinity: a job with no demand anywhere has unbounded headroom.
            "headroom": self.headroom if math.isfinite(self.headroom) else None,
            "base_rate_rps": self.base_rate_rps,
            "peak_target_rate_rps": self.peak_target_rate_rps,
            "oracle": oracle_data(self.oracle),
            "peak_oracle": oracle_data(self.peak_oracle),
        }


def what_if(
    spec: JobSpec,
    parallelism: dict[str, int] | None = None,
    *,
    rate_rps: float | None = None,
    seed: int = 0,
    noise: float = 0.02,
    spec_dir: str | None = None,
) -> WhatIf:
    """Deploy `spec` at `parallelism` (missing operators keep the spec's) in the sim and observe one window."""
    full = complete_parallelism(spec, parallelism)
    for op in spec.operators:
        if full[op.id] > op.max_parallelism:
            raise UsageError(f"parallelism {full[op.id]} for {op.id!r} exceeds its max_parallelism {op.max_parallelism}")
    # The steady state behind the window (saturation, headroom) is the sim's own: only the sim can answer.
    executor = cast("SimExecutor", make_executor("sim", seed=seed, noise=noise, rate_rps=rate_rps, spec_dir=spec_dir))
    with executor:
        executor.deploy(spec, full)
        observation = executor.observe()
        state = executor.last_state
        assert state is not None
        peak_rps = executor.peak_target_rate_rps(spec)
    oracle = oracle_parallelism(spec, observation.target_rate_rps)
    same_rate = math.isclose(peak_rps, observation.target_rate_rps, rel_tol=1e-12)
    return WhatIf(
        parallelism=full,
        observation=observation,
        saturated=state.saturated,
        bottlenecks=state.bottlenecks,
        headroom=state.headroom,
        oracle=oracle,
        base_rate_rps=executor.base_rate_rps(spec),
        peak_target_rate_rps=peak_rps,
        peak_oracle=oracle if same_rate else oracle_parallelism(spec, peak_rps),
    )
