"""Key groups: how the local engine routes keyed records and redistributes keyed state (Flink's scheme).

A key's group is `hash(key) % max_parallelism`; instance `i` of `p` owns the contiguous range of groups
`key_group_range(i, p, max_parallelism)`, so a rescale moves whole groups and the routing of a record and
the placement of its state always agree. The hash depends on the key's values only (not its column names):
the two inputs of a join, keyed by differently named columns, meet in the same instance.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl

__all__ = ["HASH_SEED", "key_hash", "key_groups", "instances_of", "instance_of_key_group", "key_group_range"]

HASH_SEED = 0x5EED_7E57
_MIX = 0x9E3779B97F4A7C15  # combines column hashes (golden-ratio multiplier, wrapping in UInt64)


def _normalized(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    # Equal values hash equally across inputs whose columns differ in width (Int32 on one side, Int64 on the other).
    if dtype.is_integer() or dtype == pl.Boolean:
        return expr.cast(pl.Int64)
    if dtype.is_float():
        return expr.cast(pl.Float64)
    if dtype.is_temporal():
        return expr.to_physical().cast(pl.Int64)
    return expr


def key_hash(df: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """A UInt64 hash of each row's key (`columns`, in order), equal for equal values whatever the names."""
    if not columns:
        raise ValueError("a key needs at least one column")
    schema = df.schema
    combined: pl.Expr | None = None
    for name in columns:
        h = _normalized(pl.col(name), schema[name]).hash(seed=HASH_SEED)
        combined = h if combined is None else (combined * pl.lit(_MIX, dtype=pl.UInt64)) ^ h
    assert combined is not None
    return df.select(combined.alias("__hash")).to_series()


def key_groups(df: pl.DataFrame, columns: Sequence[str], max_parallelism: int) -> pl.Series:
    """Each row's key group in 0..max_parallelism-1 (UInt32)."""
    return (key_hash(df, columns) % max_parallelism).cast(pl.UInt32).alias("__key_group")


def instance_of_key_group(key_group: int, parallelism: int, max_parallelism: int) -> int:
    """Which of `parallelism` instances owns `key_group` (Flink's computeOperatorIndexForKeyGroup)."""
    return key_group * parallelism // max_parallelism


def instances_of(df: pl.DataFrame, columns: Sequence[str], parallelism: int, max_parallelism: int) -> pl.Series:
    """The instance each row is routed to (UInt32)."""
    groups = key_groups(df, columns, max_parallelism).cast(pl.UInt64)
    return (groups * parallelism // max_parallelism).cast(pl.UInt32).alias("__instance")


def key_group_range(index: int, parallelism: int, max_parallelism: int) -> range:
    """The key groups instance `index` of `parallelism` owns: the inverse of instance_of_key_group."""
    if not 0 <= index < parallelism <= max_parallelism:
        raise ValueError(f"instance {index} of {parallelism} with max parallelism {max_parallelism}")
    start = -(-index * max_parallelism // parallelism)
    end = -(-(index + 1) * max_parallelism // parallelism)
    return range(start, end)
