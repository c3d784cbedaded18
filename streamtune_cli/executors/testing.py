"""Conformance checks every executor must pass (in the spirit of scikit-learn's check_estimator).

Each check takes a factory (no arguments, returns a fresh executor) and a small job, and raises
AssertionError with a message saying what the executor got wrong. check_executor runs them all.
"""

from __future__ import annotations

import math
from typing import Callable

from streamtune_cli.errors import ExecutorError
from streamtune_cli.executors.base import FRACTION_SLACK, Executor, Observation, Parallelism
from streamtune_cli.spec.models import JobSpec

__all__ = [
    "EXECUTOR_CHECKS",
    "check_executor",
    "check_observe_before_deploy_raises",
    "check_observation_covers_every_operator",
    "check_redeploy_is_observed",
    "check_close_twice_is_safe",
    "check_context_manager_closes",
    "check_context_manager_closes_when_the_body_raises",
]

ExecutorFactory = Callable[[], Executor]

_FRACTIONS = ("busy", "busy_max", "idle", "backpressured", "backpressured_max")


def _other_parallelism(job: JobSpec) -> Parallelism:
    """The spec's parallelism with every operator that can change moved by one (up if its cap allows, else down)."""
    changed = {}
    for op in job.operators:
        if op.parallelism < op.max_parallelism:
            changed[op.id] = op.parallelism + 1
        else:
            changed[op.id] = max(1, op.parallelism - 1)
    if changed == job.parallelism:
        raise ValueError(f"job {job.name!r}: no operator can change parallelism, so a redeploy cannot be checked")
    return changed


def _observe(executor: Executor, what: str) -> Observation:
    try:
        observation = executor.observe()
    except ExecutorError as exc:
        raise AssertionError(f"{_name(executor)}: observe() {what} raised ExecutorError: {exc}") from exc
    assert isinstance(observation, Observation), (
        f"{_name(executor)}: observe() {what} returned {type(observation).__name__}, not an Observation"
    )
    return observation


def _name(executor: object) -> str:
    return f"executor {getattr(executor, 'name', type(executor).__name__)!r}"


def _assert_observation(executor: Executor, observation: Observation, job: JobSpec, parallelism: Parallelism) -> None:
    """The observation covers exactly the job's operators, at the deployed parallelism, with valid fractions."""
    name = _name(executor)
    expected, got = {op.id for op in job.operators}, set(observation.operators)
    assert got == expected, (
        f"{name}: observation operators differ from the job's: missing {sorted(expected - got)}, "
        f"unexpected {sorted(got - expected)}"
    )
    for op_id, metrics in observation.operators.items():
        assert metrics.operator == op_id, f"{name}: operators[{op_id!r}] holds the metrics of {metrics.operator!r}"
        assert metrics.parallelism == parallelism[op_id], (
            f"{name}: operator {op_id!r} observed at parallelism {metrics.parallelism}, deployed at {parallelism[op_id]}"
        )
        for field in _FRACTIONS:
            value = getattr(metrics, field)
            assert math.isfinite(value) and -FRACTION_SLACK <= value <= 1 + FRACTION_SLACK, (
                f"{name}: operator {op_id!r} {field} = {value!r} is not a fraction in [0, 1]"
            )
    # An executor may build its observation without validation (model_construct); the model must still hold.
    try:
        Observation.model_validate(observation.model_dump())
    except ValueError as exc:
        raise AssertionError(f"{name}: the observation breaks the measurement model: {exc}") from exc


def _assert_closed(executor: Executor, how: str) -> None:
    # Closed means nothing is running any more: a measurement must be refused, as before any deploy.
    try:
        executor.observe()
    except ExecutorError:
        return
    raise AssertionError(f"{_name(executor)}: observe() after {how} did not raise ExecutorError (still running?)")


def check_observe_before_deploy_raises(factory: ExecutorFactory, job: JobSpec) -> None:
    executor = factory()
    try:
        try:
            executor.observe()
        except ExecutorError as exc:
            assert exc.executor == executor.name, (
                f"{_name(executor)}: its ExecutorError names executor {exc.executor!r}, not {executor.name!r}"
            )
            return
        except Exception as exc:  # noqa: BLE001 - any other error is what this check reports
            raise AssertionError(
                f"{_name(executor)}: observe() before deploy() raised {type(exc).__name__}, not ExecutorError"
            ) from exc
        raise AssertionError(f"{_name(executor)}: observe() before deploy() returned instead of raising ExecutorError")
    finally:
        executor.close()


def check_observation_covers_every_operator(factory: ExecutorFactory, job: JobSpec) -> None:
    executor = factory()
    try:
        parallelism = job.parallelism
        executor.deploy(job, parallelism)
        observation = _observe(executor, "after deploy()")
        _assert_observation(executor, observation, job, parallelism)
        peak = executor.peak_target_rate_rps(job)
        assert math.isfinite(peak) and peak >= 0, f"{_name(executor)}: peak_target_rate_rps = {peak!r}"
    finally:
        executor.close()


def check_redeploy_is_observed(factory: ExecutorFactory, job: JobSpec) -> None:
    executor = factory()
    try:
        executor.deploy(job, job.parallelism)
        _observe(executor, "after deploy()")
        changed = _other_parallelism(job)
        executor.deploy(job, changed)
        observation = _observe(executor, "after a redeploy")
        _assert_observation(executor, observation, job, changed)
    finally:
        executor.close()


def check_close_twice_is_safe(factory: ExecutorFactory, job: JobSpec) -> None:
    executor = factory()
    executor.deploy(job, job.parallelism)
    for attempt in ("first", "second"):
        try:
            executor.close()
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"{_name(executor)}: the {attempt} close() raised {type(exc).__name__}: {exc}") from exc
    _assert_closed(executor, "close()")


def check_context_manager_closes(factory: ExecutorFactory, job: JobSpec) -> None:
    executor = factory()
    assert hasattr(executor, "__enter__") and hasattr(executor, "__exit__"), (
        f"{_name(executor)}: is not a context manager (no __enter__/__exit__)"
    )
    with executor as entered:  # type: ignore[attr-defined]
        assert entered is executor, f"{_name(executor)}: __enter__ returned {entered!r}, not the executor"
        executor.deploy(job, job.parallelism)
        _observe(executor, "inside a with block")
    _assert_closed(executor, "leaving a with block")
    executor.close()  # closing again after the with block is safe too


class _BodyFailed(Exception):
    """Raised inside a with block to check that the executor closes and lets the error through."""


def check_context_manager_closes_when_the_body_raises(factory: ExecutorFactory, job: JobSpec) -> None:
    executor = factory()
    try:
        with executor:  # type: ignore[attr-defined]
            executor.deploy(job, job.parallelism)
            raise _BodyFailed
    except _BodyFailed:
        pass
    else:
        raise AssertionError(f"{_name(executor)}: __exit__ swallowed the exception raised in its with block")
    _assert_closed(executor, "a with block that raised")


EXECUTOR_CHECKS: tuple[Callable[[ExecutorFactory, JobSpec], None], ...] = (
    check_observe_before_deploy_raises,
    check_observation_covers_every_operator,
    check_redeploy_is_observed,
    check_close_twice_is_safe,
    check_context_manager_closes,
    check_context_manager_closes_when_the_body_raises,
)


def check_executor(factory: ExecutorFactory, job: JobSpec) -> None:
    """Run every check in EXECUTOR_CHECKS on fresh executors from `factory`; the first failure raises AssertionError.

    `job` should be small, and at least one of its operators must be able to change parallelism.
    """
    for check in EXECUTOR_CHECKS:
        check(factory, job)
