"""Benchmark suites: every tuner on the same cases, judged strictly against the oracle (the fair bench).

suite (schema, loading, regimes), runner (cold and continuous protocols, per-run judging), aggregate
(per-tuner figures and failure lists), render (Markdown and rich tables). Submodules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "suite_from_doc",
    "REGIME_PRESETS",
    "Regime",
    "BenchSuite",
    "LoadedSuite",
    "load_suite",
    "parse_tuner_list",
    "apply_regime",
    "scale_workload",
    "plan_size",
    "run_suite",
    "judge_run",
    "aggregate_runs",
    "oracle_aggregate",
    "failures_by_tuner",
    "AGGREGATE_HEADERS",
    "aggregate_table_rows",
    "bench_markdown",
    "bench_rich_tables",
]

_LOCATIONS = {
    **{n: "streamtune_cli.bench.suite" for n in (
        "suite_from_doc", "REGIME_PRESETS", "Regime", "BenchSuite", "LoadedSuite", "load_suite",
        "parse_tuner_list", "apply_regime", "scale_workload", "plan_size",
    )},
    "run_suite": "streamtune_cli.bench.runner",
    "judge_run": "streamtune_cli.bench.runner",
    "aggregate_runs": "streamtune_cli.bench.aggregate",
    "oracle_aggregate": "streamtune_cli.bench.aggregate",
    "failures_by_tuner": "streamtune_cli.bench.aggregate",
    "AGGREGATE_HEADERS": "streamtune_cli.bench.render",
    "aggregate_table_rows": "streamtune_cli.bench.render",
    "bench_markdown": "streamtune_cli.bench.render",
    "bench_rich_tables": "streamtune_cli.bench.render",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
