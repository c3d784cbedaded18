"""Parallelism tuning: the loop (executor + tuner -> Trace), the baseline tuners, and the oracle.

Submodules are imported on first use so that importing a light helper (e.g. tuning.parallelism from the
sim executor) does not pull in the loop, the tuners or their dependencies.
"""

from __future__ import annotations

from streamtune_cli._lazy import lazy_exports


_LOCATIONS = {
    "TuningConfig": "loop",
    "run_tuning": "loop",
    "retarget_parallelism": "parallelism",
    "oracle_parallelism": "oracle",
    "OracleResult": "oracle",
    "oracle_data": "oracle",
    "covers_peak": "loop",
    "make_tuner": "tuners",
    "TUNER_NAMES": "tuners",
}

__all__ = list(_LOCATIONS)

__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, globals())
