"""Real traces for the report tests: the tuning loop on the sim executor over a shipped config (about 0.1 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from streamtune_cli.executors.base import Trace

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_sim(config: str, *, tuner: str = "ds2", seed: int = 1, max_steps: int = 10) -> tuple[Trace, dict[str, int]]:
    """(trace, oracle parallelism at the peak) of `tune CONFIG --executor sim --tuner TUNER --seed SEED`."""
    from streamtune_cli.executors.sim import SimExecutor
    from streamtune_cli.spec import load_spec
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning
    from streamtune_cli.tuning.tuners import make_tuner

    spec = load_spec(CONFIGS / config)
    executor = SimExecutor(seed=seed)
    try:
        trace = run_tuning(spec, executor, make_tuner(tuner), TuningConfig(max_steps=max_steps), seed=seed)
    finally:
        executor.close()
    return trace, trace.meta["oracle"]["parallelism"]


@pytest.fixture(scope="session")
def sim_trace() -> Callable[..., tuple[Trace, dict[str, int]]]:
    cache: dict[tuple, tuple[Trace, dict[str, int]]] = {}

    def get(config: str, **options: object) -> tuple[Trace, dict[str, int]]:
        key = (config, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = run_sim(config, **options)  # type: ignore[arg-type]
        return cache[key]

    return get


@pytest.fixture(scope="session")
def failed_trace(sim_trace) -> tuple[Trace, dict[str, int]]:  # noqa: ANN001
    """q5 under DS2 stalls below its target: the run `tune` reports as failed."""
    trace, oracle = sim_trace("nexmark/q5.yaml")
    assert trace.meta["stop_reason"] == "stalled" and not trace.meta["target_met"]
    return trace, oracle


@pytest.fixture(scope="session")
def good_trace(sim_trace) -> tuple[Trace, dict[str, int]]:  # noqa: ANN001
    """The linear chain under DS2 converges with the target met at the peak, after reconfigurations."""
    trace, oracle = sim_trace("synthetic/linear_chain.yaml")
    assert trace.meta["converged"] and trace.meta["target_met"] and trace.meta["reconfigurations"] >= 1
    return trace, oracle
