"""Tuner registry: make_tuner(name, **options) builds a tuner; each lives in its own module, imported on use."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from streamtune_cli.errors import UsageError
from streamtune_cli.tuning.tuners.base import OptionError, Tuner

__all__ = ["Tuner", "TUNER_NAMES", "make_tuner", "tuner_class", "TunerOptionError", "tuner_options_from_text"]


class TunerOptionError(UsageError):
    """A tuner option that is unknown or has a value the tuner cannot use; `option` names it (or is None)."""

    def __init__(self, tuner: str, option: str | None, message: str):
        super().__init__(message)
        self.tuner = tuner
        self.option = option

# name -> (module, class). Modules are imported only when their tuner is built, so `tune --tuner ds2`
# never pays for scikit-learn (ContTune) or torch (StreamTune).
_REGISTRY: dict[str, tuple[str, str]] = {
    "ds2": ("streamtune_cli.tuning.tuners.ds2", "DS2Tuner"),
    "conttune": ("streamtune_cli.tuning.tuners.conttune", "ContTuneTuner"),
    "autoscaler": ("streamtune_cli.tuning.tuners.autoscaler", "AutoscalerTuner"),
    "streamtune": ("streamtune_cli.tuning.tuners.streamtune", "StreamTuneTuner"),
}

TUNER_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def tuner_class(name: str) -> type:
    if name not in _REGISTRY:
        raise UsageError(f"unknown tuner {name!r} (choose from {', '.join(TUNER_NAMES)})")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def make_tuner(name: str, **options: Any) -> Tuner:
    """Build the tuner called `name` with keyword options.

    An unknown option, or a value of the wrong type or out of range, raises TunerOptionError naming the
    option; the tuners check their options when built, so a bad value never surfaces mid-run.
    """
    cls = tuner_class(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TunerOptionError(
            name,
            unknown[0],
            f"tuner {name!r} has no option {', '.join(repr(u) for u in unknown)} "
            f"(options: {', '.join(sorted(accepted)) or 'none'})",
        )
    try:
        return cls(**options)
    except OptionError as exc:
        raise TunerOptionError(name, exc.option, f"tuner {name!r} option {exc.option!r}: {exc.detail}") from None
    except (TypeError, ValueError) as exc:
        raise TunerOptionError(name, None, f"tuner {name!r}: bad options: {exc}") from None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _converter_for(default: Any) -> Callable[[str], Any]:
    """Text -> value of the option's type, read off its default (bool before int: bool is an int)."""
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return lambda text: int(text.strip())
    if isinstance(default, float):
        return lambda text: float(text.strip())
    return lambda text: text


def tuner_options_from_text(name: str, pairs: list[str]) -> dict[str, Any]:
    """Options for tuner `name` from `KEY=VALUE` texts (the command line's `--tuner-option`).

    A KEY is one of the tuner's option names or an alias it declares (`option_aliases`: the autoscaler takes
    the Flink autoscaler's own names, `job.autoscaler.utilization.target`, ...). A value is converted to the
    type of the option's default, or by the alias's own converter (Flink durations); its range is checked
    when the tuner is built (make_tuner). An unknown key is a TunerOptionError listing every valid key.
    """
    cls = tuner_class(name)
    params = {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}
    shown: dict[str, tuple[str, Any]] = dict(getattr(cls, "option_aliases", {}))
    aliases = {**shown, **getattr(cls, "legacy_option_aliases", {})}
    options: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TunerOptionError(name, None, f"--tuner-option expects KEY=VALUE, got {pair!r}")
        if key in aliases:
            option, convert = aliases[key]
        elif key in params:
            option, convert = key, None
        else:
            valid = sorted(params) + sorted(shown)
            raise TunerOptionError(
                name, key, f"tuner {name!r} has no option {key!r}; valid keys: {', '.join(valid) or 'none'}"
            )
        if option in given_as:
            raise TunerOptionError(name, key, f"tuner {name!r}: {key!r} sets {option!r} again (given as {given_as[option]!r})")
        try:
            options[option] = (convert or _converter_for(params[option].default))(text)
        except ValueError as exc:
            raise TunerOptionError(name, key, f"tuner {name!r} option {key!r}: {exc}") from None
        given_as[option] = key
    return options
