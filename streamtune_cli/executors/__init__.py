"""Executors run a job at a parallelism and measure it: sim (analytic), local (real), flink (REST)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamtune_cli._lazy import lazy_exports

# Names resolve on first use (PEP 562): `from streamtune_cli.executors import EXECUTOR_NAMES` imports
# neither pydantic nor numpy, which keeps `streamtune --help` fast.
_EXPORTS = {
    "Decision": "base",
    "Executor": "base",
    "Observation": "base",
    "OperatorMetrics": "base",
    "Parallelism": "base",
    "Trace": "base",
    "TraceStep": "base",
    "EXECUTOR_NAMES": "registry",
    "EXECUTOR_OPTIONS": "registry",
    "ExecutorOption": "registry",
    "ExecutorOptionError": "registry",
    "SimOptions": "registry",
    "executor_class": "registry",
    "executor_options": "registry",
    "make_executor": "registry",
    "options_model": "registry",
}

__all__ = [
    "EXECUTOR_NAMES",
    "EXECUTOR_OPTIONS",
    "Decision",
    "Executor",
    "ExecutorOption",
    "ExecutorOptionError",
    "Observation",
    "OperatorMetrics",
    "Parallelism",
    "SimOptions",
    "Trace",
    "TraceStep",
    "executor_class",
    "executor_options",
    "make_executor",
    "options_model",
]

if TYPE_CHECKING:
    from .base import Decision, Executor, Observation, OperatorMetrics, Parallelism, Trace, TraceStep
    from .registry import (
        EXECUTOR_NAMES,
        EXECUTOR_OPTIONS,
        ExecutorOption,
        ExecutorOptionError,
        SimOptions,
        executor_class,
        executor_options,
        make_executor,
        options_model,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
