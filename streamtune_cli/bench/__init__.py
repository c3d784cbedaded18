"""Benchmark suites: every tuner on the same cases, judged strictly against the oracle (the fair bench).

suite (schema, loading, regimes), runner (cold and continuous protocols, per-run judging), aggregate
(per-tuner figures and failure lists), render (Markdown and rich tables). Submodules load on first use.
"""

from __future__ import annotations

from streamtune_cli._lazy import lazy_exports


_LOCATIONS = {
    **{n: "suite" for n in (
        "suite_from_doc", "REGIME_PRESETS", "Regime", "BenchSuite", "LoadedSuite", "load_suite",
        "parse_tuner_list", "apply_regime", "scale_workload", "plan_size",
    )},
    "run_suite": "runner",
    "judge_run": "runner",
    "aggregate_runs": "aggregate",
    "oracle_aggregate": "aggregate",
    "failures_by_tuner": "aggregate",
    "AGGREGATE_HEADERS": "render",
    "aggregate_table_rows": "render",
    "bench_markdown": "render",
    "bench_rich_tables": "render",
}

__all__ = list(_LOCATIONS)

__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, globals())
