"""Tuner registry: make_tuner(name, **options) builds a tuner; each lives in its own module, imported on use."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from streamtune_cli.errors import UsageError
from streamtune_cli.tuning.tuners.base import OptionError, Tuner

__all__ = ["Tuner", "TUNER_NAMES", "make_tuner", "tuner_class", "TunerOptionError"]


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
