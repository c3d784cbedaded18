"""Where streamtune keeps what it can rebuild: the Flink install, the SQL runner jar, the record of SQL
expressions already checked. $STREAMTUNE_CACHE_DIR, else $XDG_CACHE_HOME/streamtune, else ~/.cache/streamtune."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """$STREAMTUNE_CACHE_DIR, else $XDG_CACHE_HOME/streamtune, else ~/.cache/streamtune."""
    explicit = os.environ.get("STREAMTUNE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamtune"
