"""Tuner options from the command line (`tune --tuner-option KEY=VALUE`): each tuner's own names, the Flink
autoscaler's option names for the autoscaler tuner, Flink durations, and errors that list the valid keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.tuning.tuners import TUNER_NAMES, TunerOptionError, make_tuner, tuner_options_from_text
from streamtune_cli.tuning.tuners.autoscaler import FLINK_OPTION_NAMES, flink_duration_s

ROOT = Path(__file__).resolve().parents[2]
CHAIN = str(ROOT / "configs/synthetic/linear_chain.yaml")
runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30 min", 1800.0), ("30min", 1800.0), ("5 minutes", 300.0), ("300 s", 300.0), ("300s", 300.0),
     ("2 h", 7200.0), ("1 d", 86400.0), ("1500 ms", 1.5), ("1500", 1.5), (" 10 SEC ", 10.0), ("0", 0.0)],
)
def test_flink_durations(text: str, seconds: float) -> None:
    # A bare number is milliseconds, as in Flink's configuration (TimeUtils.parseDuration).
    assert flink_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "min", "1.5 min", "-3 s", "10 fortnights", "PT30M"])
def test_bad_flink_durations(text: str) -> None:
    with pytest.raises(ValueError):
        flink_duration_s(text)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "sec", "seconds", " s"]))
def test_seconds_are_seconds_whatever_the_label(n: int, unit: str) -> None:
    assert flink_duration_s(f"{n}{unit}") == n


def test_flink_names_set_the_same_options_as_the_own_names() -> None:
    flink = tuner_options_from_text(
        "autoscaler",
        [
            "job.autoscaler.utilization.target=0.6",
            "job.autoscaler.target.utilization.boundary=0.2",
            "job.autoscaler.scale-down.max-factor=0.5",
            "job.autoscaler.scale-up.max-factor=4",
            "job.autoscaler.catch-up.duration=10 min",
            "job.autoscaler.restart.time=60 s",
            "job.autoscaler.backlog-processing.lag-threshold=2 min",
            "job.autoscaler.vertex.max-parallelism=64",
        ],
    )
    own = tuner_options_from_text(
        "autoscaler",
        [
            "target_utilization=0.6", "utilization_boundary=0.2", "max_scale_down_factor=0.5", "max_scale_up_factor=4",
            "catch_up_s=600", "restart_s=60", "backlog_threshold_s=120", "vertex_max_parallelism=64",
        ],
    )
    assert flink == own
    tuner = make_tuner("autoscaler", **flink)
    assert (tuner.target_utilization, tuner.catch_up_s, tuner.vertex_max_parallelism) == (0.6, 600.0, 64)
    assert isinstance(tuner.vertex_max_parallelism, int)


def test_every_flink_name_maps_to_an_option_of_the_tuner() -> None:
    from streamtune_cli.tuning.tuners.autoscaler import AutoscalerTuner
    import inspect

    accepted = set(inspect.signature(AutoscalerTuner.__init__).parameters) - {"self"}
    assert {option for option, _ in FLINK_OPTION_NAMES.values()} <= accepted


def test_deprecated_and_legacy_flink_spellings_are_accepted() -> None:
    for key in ("job.autoscaler.target.utilization", "kubernetes.operator.job.autoscaler.utilization.target"):
        assert tuner_options_from_text("autoscaler", [f"{key}=0.5"]) == {"target_utilization": 0.5}


def test_unknown_key_lists_every_valid_key() -> None:
    with pytest.raises(TunerOptionError) as raised:
        tuner_options_from_text("autoscaler", ["job.autoscaler.stabilization.interval=5 min"])
    message = str(raised.value)
    assert "job.autoscaler.stabilization.interval" in message
    for valid in ("target_utilization", "job.autoscaler.utilization.target", "job.autoscaler.catch-up.duration"):
        assert valid in message
    assert "kubernetes.operator" not in message  # the legacy prefix is accepted, not advertised


@pytest.mark.parametrize(
    ("tuner", "pair", "message"),
    [
        ("autoscaler", "job.autoscaler.catch-up.duration=soon", "'job.autoscaler.catch-up.duration'"),
        ("autoscaler", "align_key_groups=maybe", "true or false"),
        ("autoscaler", "vertex_max_parallelism=2.5", "'vertex_max_parallelism'"),
        ("autoscaler", "no-equals-sign", "KEY=VALUE"),
        ("ds2", "overprovision=lots", "'overprovision'"),
    ],
)
def test_bad_values_name_the_key(tuner: str, pair: str, message: str) -> None:
    with pytest.raises(TunerOptionError) as raised:
        tuner_options_from_text(tuner, [pair])
    assert message in str(raised.value)


def test_an_option_set_twice_is_an_error() -> None:
    with pytest.raises(TunerOptionError, match="again"):
        tuner_options_from_text("autoscaler", ["target_utilization=0.5", "job.autoscaler.utilization.target=0.6"])


@pytest.mark.parametrize("name", TUNER_NAMES)
def test_every_tuner_takes_its_defaults_back_as_text(name: str) -> None:
    # Each option's default, written as text, is read back to the same value and type.
    import inspect

    from streamtune_cli.tuning.tuners import tuner_class

    params = {n: p.default for n, p in inspect.signature(tuner_class(name).__init__).parameters.items() if n != "self"}
    for option, default in params.items():
        if default is None:
            continue
        text = str(default).lower() if isinstance(default, bool) else str(default)
        parsed = tuner_options_from_text(name, [f"{option}={text}"])[option]
        assert parsed == default and type(parsed) is type(default), option


def test_tune_passes_the_options_to_the_tuner() -> None:
    def final_total(*options: str) -> tuple[int, dict]:
        args = ["tune", CHAIN, "--tuner", "autoscaler", "--noise", "0", "--json"]
        for option in options:
            args += ["--tuner-option", option]
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 1), result.output
        data = json.loads(result.stdout)
        return data["final_total_parallelism"], data

    default, _ = final_total()
    low, by_flink_name = final_total("job.autoscaler.utilization.target=0.35")
    _, by_own_name = final_total("target_utilization=0.35")
    # A lower target utilization leaves more headroom: more instances, whichever name sets it.
    assert low > default
    assert by_flink_name["final_parallelism"] == by_own_name["final_parallelism"]
    bad = runner.invoke(app, ["tune", CHAIN, "--tuner", "autoscaler", "--tuner-option", "job.autoscaler.metrics.window=5 min"])
    assert bad.exit_code == 2 and "valid keys" in bad.output and "Traceback" not in bad.output
