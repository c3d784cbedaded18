"""One conformance suite every executor in EXECUTOR_NAMES must pass, the registry, and exit code 4."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

import streamtune_cli.executors as executors
from streamtune_cli.cli.app import app
from streamtune_cli.cli.common import EXIT_EXECUTOR
from streamtune_cli.errors import ExecutorError, UsageError
from streamtune_cli.executors.base import Observation
from streamtune_cli.executors.registry import (
    EXECUTOR_NAMES,
    EXECUTOR_OPTIONS,
    ExecutorOptionError,
    executor_options,
    make_executor,
    options_model,
)
from streamtune_cli.executors.sim import SimExecutor
from streamtune_cli.executors.testing import EXECUTOR_CHECKS, check_executor
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.tuning.testing import chain_spec

ROOT = Path(__file__).resolve().parents[2]

STAGES = [("src", "source", 2.0, 1.0), ("a", "map", 10.0, 1.0), ("f", "filter", 5.0, 0.5), ("sink", "sink", 4.0, 1.0)]

JOBS: dict[str, JobSpec] = {
    # Backpressured at parallelism 1 (the map is the bottleneck), so fractions sit at their extremes.
    "chain": chain_spec(STAGES, rate_rps=150_000),
    # Spread out, with default (sub-linear) scaling, and varying in time.
    "keyed-square": chain_spec(
        STAGES,
        rate_rps=50_000,
        name="keyed",
        parallelism=3,
        partitioning="rebalance",
        sigma=None,
        kappa=None,
        schedule={"kind": "square", "period_s": 120, "low_factor": 0.5},
    ),
    # Every operator at its cap: the redeploy has to move down.
    "capped": chain_spec(STAGES, rate_rps=10_000, name="capped", parallelism=2, max_parallelism=2),
}


# Options that keep a real executor's checks short: the local one measures half-second windows of real time.
FAST = {"sim": {}, "local": {"window_s": 0.5, "warmup_s": 0.2, "rate_rps": 20_000.0}}
# Executors that need a running cluster pass the same suite in their own integration test, against a job
# they start (tests/flink/test_flink_cluster.py).
NEEDS_A_CLUSTER = {"flink"}
# A real executor runs the checks on one job (each deploy starts processes); the sim on all of them.
CASES = [
    (name, job)
    for name in EXECUTOR_NAMES
    if name not in NEEDS_A_CLUSTER
    for job in (JOBS if name == "sim" else ["keyed-square"])
]


@pytest.mark.parametrize(("name", "job"), CASES, ids=[f"{n}-{j}" for n, j in CASES])
def test_every_executor_passes_the_conformance_suite(name: str, job: str) -> None:
    check_executor(functools.partial(make_executor, name, **FAST[name]), JOBS[job])


def test_fast_options_cover_every_executor() -> None:
    assert set(FAST) == set(EXECUTOR_NAMES) - NEEDS_A_CLUSTER


@pytest.mark.parametrize("check", EXECUTOR_CHECKS, ids=lambda check: check.__name__)
def test_each_check_passes_on_a_noisy_sim(check: Callable[..., None]) -> None:
    check(functools.partial(make_executor, "sim", noise=0.5, seed=7, window_s=5.0, warmup_s=0.0), JOBS["chain"])


# -- the suite catches broken executors ------------------------------------------------------------


class _DropsAnOperator(SimExecutor):
    def observe(self) -> Observation:
        obs = super().observe()
        kept = dict(list(obs.operators.items())[:-1])
        return obs.model_copy(update={"operators": kept})


class _CloseFailsTheSecondTime(SimExecutor):
    _closed = False

    def close(self) -> None:
        if self._closed:
            raise RuntimeError("already closed")
        self._closed = True
        super().close()


class _IgnoresRedeploys(SimExecutor):
    def deploy(self, job: JobSpec, parallelism: dict[str, int]) -> None:
        if self.deployment is None:
            super().deploy(job, parallelism)


class _ObservesBeforeDeploy(SimExecutor):
    def observe(self) -> Observation:
        if self.deployment is None:
            raise RuntimeError("nothing deployed")
        return super().observe()


class _ReportsOverfullFractions(SimExecutor):
    def observe(self) -> Observation:
        obs = super().observe()
        # model_construct skips validation, as a careless executor might.
        first = next(iter(obs.operators))
        bad = obs.operators[first].model_construct(**{**obs.operators[first].__dict__, "busy": 1.5})
        return Observation.model_construct(**{**obs.__dict__, "operators": {**obs.operators, first: bad}})


class _ExitDoesNotClose(SimExecutor):
    def __exit__(self, *exc_info: object) -> None:
        pass


class _ExitSwallowsErrors(SimExecutor):
    def __exit__(self, *exc_info: object) -> bool:  # type: ignore[override]
        self.close()
        return True


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (_DropsAnOperator, r"missing \['sink'\]"),
        (_CloseFailsTheSecondTime, "second close"),
        (_IgnoresRedeploys, "observed at parallelism 1, deployed at 2"),
        (_ObservesBeforeDeploy, "raised RuntimeError, not ExecutorError"),
        (_ReportsOverfullFractions, "busy = 1.5 is not a fraction"),
        (_ExitDoesNotClose, "after leaving a with block did not raise"),
        (_ExitSwallowsErrors, "swallowed the exception"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_a_broken_executor_fails_the_suite(broken: type, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_executor(broken, JOBS["chain"])


def test_a_job_that_cannot_change_parallelism_is_refused() -> None:
    frozen = chain_spec(STAGES, rate_rps=1_000, max_parallelism=1)
    with pytest.raises(ValueError, match="no operator can change parallelism"):
        check_executor(SimExecutor, frozen)


# -- the registry ----------------------------------------------------------------------------------


def test_registry_names_and_lazy_exports() -> None:
    assert EXECUTOR_NAMES == ("sim", "local", "flink")
    assert set(EXECUTOR_OPTIONS) == set(EXECUTOR_NAMES)
    assert executors.make_executor is make_executor and executors.SimOptions is options_model("sim")
    assert set(executors.__all__) == set(executors._EXPORTS)
    for name in executors.__all__:
        assert getattr(executors, name) is not None


@pytest.mark.parametrize(
    ("name", "message"),
    [("k8s", "unknown executor 'k8s' (choose from sim, local, flink)")],
)
def test_registry_rejects_unknown_names(name: str, message: str) -> None:
    for call in (lambda: make_executor(name), lambda: executor_options(name, {})):
        with pytest.raises(UsageError, match=re.escape(message)):
            call()


def test_options_model_matches_the_sim_constructor() -> None:
    import inspect

    model = options_model("sim")
    accepted = [p for p in inspect.signature(SimExecutor.__init__).parameters if p != "self"]
    assert list(model.model_fields) == accepted
    defaults = {p.name: p.default for p in inspect.signature(SimExecutor.__init__).parameters.values() if p.name != "self"}
    assert model().model_dump() == defaults
    assert model.model_config["extra"] == "forbid" and model.model_config["allow_inf_nan"] is False


@pytest.mark.parametrize(
    ("options", "option", "words"),
    [
        ({"bogus": 1}, "bogus", "has no option 'bogus'"),
        ({"seed": -1}, "seed", "must be an integer >= 0, got -1"),
        ({"seed": True}, "seed", "must be an integer >= 0"),
        ({"seed": 1.5}, "seed", "must be an integer"),
        ({"noise": 0.6}, "noise", "between 0 and 0.5, got 0.6"),
        ({"noise": float("nan")}, "noise", "got nan"),
        ({"noise": "x"}, "noise", "got 'x'"),
        ({"window_s": 0}, "window_s", "must be positive and finite"),
        ({"window_s": float("inf")}, "window_s", "must be positive and finite"),
        ({"warmup_s": -1.0}, "warmup_s", "must be a finite number >= 0"),
        ({"rate_rps": 0}, "rate_rps", "must be positive and finite"),
        ({"spec_dir": 3}, "spec_dir", "must be a string"),
        ({"noise": 0.1, "seed": -1}, "seed", "seed"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], option: str, words: str) -> None:
    with pytest.raises(ExecutorOptionError) as as_data:
        executor_options("sim", options)
    with pytest.raises(ExecutorOptionError) as when_built:
        make_executor("sim", **options)
    for info in (as_data, when_built):
        message = str(info.value)
        assert info.value.executor == "sim" and info.value.option == option
        assert "executor 'sim'" in message and repr(option) in message and words in message
        assert "\n" not in message


def test_good_options_validate_without_building_and_are_passed_on() -> None:
    validated = executor_options("sim", {"noise": 0, "rate_rps": 5_000, "seed": 3})
    assert validated.noise == 0.0 and validated.rate_rps == 5_000.0 and validated.window_s == 30.0
    sim = make_executor("sim", noise=0.1, seed=3, rate_rps=5_000.0, window_s=10.0)
    assert isinstance(sim, SimExecutor)
    assert (sim.noise, sim.seed, sim.rate_rps, sim.window_s) == (0.1, 3, 5_000.0, 10.0)


def test_validating_options_imports_no_executor_module() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\nfrom streamtune_cli.executors import executor_options\n"
        "executor_options('sim', {'noise': 0.1})\n"
        "print('sim' if 'streamtune_cli.executors.sim' in sys.modules else 'none')"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["none"]


def _docs_section() -> str:
    text = (ROOT / "docs/executors.md").read_text()
    return text.split("## Executor registry and exit codes", 1)[1].split("\n## ", 1)[0]


def test_docs_table_lists_every_option_and_check() -> None:
    section = _docs_section()
    for name, options in EXECUTOR_OPTIONS.items():
        for option in options:
            assert f"| `{name}` | `{option.name}` |" in section, option.name
    for check in EXECUTOR_CHECKS:
        assert f"| `{check.__name__}` |" in section, check.__name__


def test_docs_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", _docs_section(), re.S)
    assert block is not None
    exec(compile(block.group(1), "docs/executors.md", "exec"), {})


# -- exit code 4 -----------------------------------------------------------------------------------


def test_an_executor_failure_in_a_command_is_one_line_and_exit_4(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(self: SimExecutor) -> Observation:
        raise ExecutorError(self.name, "the cluster answered 503")

    monkeypatch.setattr(SimExecutor, "observe", unreachable)
    result = CliRunner().invoke(app, ["tune", str(ROOT / "configs/synthetic/linear_chain.yaml"), "--json"])
    assert result.exit_code == EXIT_EXECUTOR == 4, result.output
    assert result.output.strip() == "error: executor 'sim': the cluster answered 503"
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("tune", ["--noise", "0.6"], "--noise must be a finite number between 0 and 0.5, got 0.6"),
        ("tune", ["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        ("tune", ["--rate", "nan"], "--rate must be positive and finite, at most 1e+10, got nan"),
        ("simulate", ["--rate", "0"], "--rate must be positive and finite, at most 1e+10, got 0.0"),
        ("tune", ["--executor", "k8s"], "unknown executor 'k8s' (choose from sim, local, flink)"),
        ("tune", ["--executor", "local", "--rest", "http://x"], "--rest is an option of executor flink, not of 'local'"),
        ("tune", ["--executor", "local", "--noise", "0.1"], "--noise is an option of executor sim, not of 'local'"),
        ("tune", ["--executor", "local", "--window", "0"], "--window must be positive and finite, got 0.0"),
    ],
)
def test_cli_executor_options_go_through_the_registry(command: str, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [command, str(ROOT / "configs/nexmark/q5.yaml"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_the_rate_flag_has_the_specs_own_bound() -> None:
    from streamtune_cli.executors.registry import _RATE_RPS
    from streamtune_cli.spec.models import MAX_RATE_RPS

    assert _RATE_RPS.le == MAX_RATE_RPS
