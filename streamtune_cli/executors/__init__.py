"""Executors run a job at a parallelism and measure it: sim (analytic), local (real), flink (REST)."""

from streamtune_cli.executors.base import Decision, Executor, Observation, OperatorMetrics, Parallelism, Trace, TraceStep

__all__ = ["Decision", "Executor", "Observation", "OperatorMetrics", "Parallelism", "Trace", "TraceStep"]
