"""Parallelism tuning: the loop (executor + tuner -> Trace), the baseline tuners, and the oracle.

Submodules are imported on first use so that importing a light helper (e.g. tuning.parallelism from the
sim executor) does not pull in the loop, the tuners or their dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TuningConfig",
    "run_tuning",
    "retarget_parallelism",
    "oracle_parallelism",
    "OracleResult",
    "oracle_data",
    "covers_peak",
    "make_tuner",
    "TUNER_NAMES",
]

_LOCATIONS = {
    "TuningConfig": "streamtune_cli.tuning.loop",
    "run_tuning": "streamtune_cli.tuning.loop",
    "retarget_parallelism": "streamtune_cli.tuning.parallelism",
    "oracle_parallelism": "streamtune_cli.tuning.oracle",
    "OracleResult": "streamtune_cli.tuning.oracle",
    "oracle_data": "streamtune_cli.tuning.oracle",
    "covers_peak": "streamtune_cli.tuning.loop",
    "make_tuner": "streamtune_cli.tuning.tuners",
    "TUNER_NAMES": "streamtune_cli.tuning.tuners",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
