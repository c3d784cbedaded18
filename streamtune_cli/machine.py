"""Facts about the machine this process runs on."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The CPUs this process (and the processes it starts) may run on: its affinity on Linux, else every CPU."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
