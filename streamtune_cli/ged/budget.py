"""The search budget of the exact GED search: a maximum number of
branch-and-bound node expansions per pair.

A budget counts work, not seconds, so the same graphs and budget give the
same result (value, bounds, `exact` flag) on any machine, however slow or
loaded.  This module imports nothing heavy, so the CLI can show the
defaults in `--help` without loading numpy or networkx.
"""

from __future__ import annotations

import operator

__all__ = ["DEFAULT_MAX_EXPANSIONS", "DEFAULT_PAIR_MAX_EXPANSIONS", "check_max_expansions"]

# One exact search (graph_edit_distance, assign_to_medoid).  An expansion of a <= 12-node pair took
# about 0.2 ms on the development machine, so this is roughly the 2 s limit it replaced (docs/ged.md).
DEFAULT_MAX_EXPANSIONS = 10_000

# Per pair of a distance matrix (distance_matrix, `streamtune cluster build`): roughly the 1 s per pair
# it replaced.  No pair of the shipped sample needs more than 189 expansions.
DEFAULT_PAIR_MAX_EXPANSIONS = 5_000


def check_max_expansions(max_expansions: int | None) -> int | None:
    """Validate a search budget: None (no limit) or an integer >= 0 (0: bounds only, no search)."""
    if max_expansions is None:
        return None
    if isinstance(max_expansions, bool):
        raise TypeError("max_expansions must be an integer >= 0 or None, not a bool")
    try:
        value = operator.index(max_expansions)
    except TypeError:
        raise TypeError(f"max_expansions must be an integer >= 0 or None, got {max_expansions!r}") from None
    if value < 0:
        raise ValueError(f"max_expansions must be >= 0 or None, got {value}")
    return value
