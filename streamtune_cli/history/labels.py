"""The bottleneck label of an operator in one measurement window: the target the history teaches models to predict.

The definition lives in streamtune_cli.definitions (one definition for the sim, labels, reports and bench);
this module keeps the history-facing names.
"""

from __future__ import annotations

from streamtune_cli.definitions import BACKPRESSURE_THRESHOLD, BUSY_THRESHOLD, bottleneck_labels

__all__ = ["BUSY_THRESHOLD", "BACKPRESSURE_THRESHOLD", "bottleneck_labels"]
