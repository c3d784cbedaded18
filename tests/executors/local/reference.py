"""Reference results of the Nexmark jobs in configs/nexmark/, computed with plain polars over bounded input.

Each `reference_qN(n_events, config)` is the expected sink output of configs/nexmark/qN.yaml when the job's
sources emit every event of the stream whose global number is below `n_events` and the engine fires every
window at the end of the input. They are written independently of the local engine: one polars lazy query
each, over `bounded_events` (the generator's rows), with the SQL texts of the job specs copied here and
parsed by `pl.sql_expr`: polars' own SQL parser, an oracle independent of the engine's Flink SQL translation.

Conventions (shared with the engine):
- project/map output exactly their columns, in order; filter keeps the rows whose predicate is true.
- a join outputs all left columns then all right columns; a right column whose name is taken gets `_right`
  (the right key columns are kept). A windowed join then appends `window_start`, `window_end`.
- windows are aligned to the epoch: a tumble/hop window is [s, s + size) with s a multiple of the size
  (tumble) or the slide (hop); session windows per key split where consecutive records are >= gap apart,
  and run from the first record's time to the last record's time + gap.
- window_aggregate outputs key columns, `window_start`, `window_end`, then the aggregates, one row per key
  and window holding at least one record; COUNT(*) is Int64.
- a non-windowed aggregate's expected result is its final value per key (a plain group_by).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from streamtune_cli.executors.local.nexmark import NexmarkConfig, generate, ordinals_below

__all__ = [
    "bounded_events",
    "reference_q1",
    "reference_q2",
    "reference_q3",
    "reference_q5",
    "reference_q5_bids_per_auction",
    "reference_q8",
    "reference_q11",
]

_MS = 1000
_DATETIME = pl.Datetime("ms")


def bounded_events(kind: str, n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Every event of `kind` whose global event number is below `n_events`, in ordinal order."""
    ordinals = np.arange(ordinals_below(kind, n_events), dtype=np.int64)
    frame = pl.from_arrow(generate(kind, ordinals, config))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _project(columns: dict[str, str]) -> list[pl.Expr]:
    return [pl.sql_expr(sql).alias(name) for name, sql in columns.items()]


def _aggregates(aggregates: dict[str, str]) -> list[pl.Expr]:
    return [pl.sql_expr(sql).alias(name) for name, sql in aggregates.items()]


def _epoch_ms(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("ms")


def _as_datetime(ms: pl.Expr) -> pl.Expr:
    return ms.cast(pl.Int64).cast(_DATETIME)


def reference_q1(n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Q1: every bid with its price converted to euros (auction, bidder, price * 0.908, date_time)."""
    columns = {"auction": "auction", "bidder": "bidder", "price": "price * 0.908", "date_time": "date_time"}
    return bounded_events("bid", n_events, config).lazy().select(_project(columns)).collect()


def reference_q2(n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Q2: (auction, price) of the bids whose auction id is a multiple of 123."""
    return (
        bounded_events("bid", n_events, config)
        .lazy()
        .filter(pl.sql_expr("MOD(auction, 123) = 0"))
        .select(_project({"auction": "auction", "price": "price"}))
        .collect()
    )


def reference_q3(n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Q3: (name, city, state, auction_id) per category-10 auction whose seller lives in OR, ID or CA.

    Inner join of the filtered auctions (left, key seller) with the filtered persons (right, key id) over the
    whole input; the person's `id` becomes `id_right`, so `id` in the projection is the auction's id.
    """
    auctions = bounded_events("auction", n_events, config).lazy().filter(pl.sql_expr("category = 10"))
    persons = bounded_events("person", n_events, config).lazy().filter(pl.sql_expr("state IN ('OR', 'ID', 'CA')"))
    return (
        auctions.join(persons, left_on=["seller"], right_on=["id"], how="inner", coalesce=False, suffix="_right")
        .select(_project({"name": "name", "city": "city", "state": "state", "auction_id": "id"}))
        .collect()
    )


def _hop_window_starts(time_ms: pl.Expr, size_ms: int, slide_ms: int) -> pl.Expr:
    """The starts of every hop window [s, s + size) (s a multiple of slide) holding time t, as a list."""
    last = (time_ms // slide_ms) * slide_ms  # the latest start <= t
    first = ((time_ms - size_ms) // slide_ms) * slide_ms + slide_ms  # the earliest start > t - size
    return pl.int_ranges(first, last + slide_ms, slide_ms, dtype=pl.Int64)


def _q5_counts(n_events: int, config: NexmarkConfig) -> pl.LazyFrame:
    size_ms, slide_ms = 10 * _MS, 2 * _MS
    return (
        bounded_events("bid", n_events, config)
        .lazy()
        .select(_project({"auction": "auction", "date_time": "date_time"}))
        .with_columns(_hop_window_starts(_epoch_ms("date_time"), size_ms, slide_ms).alias("__start"))
        .explode("__start")
        .group_by("auction", "__start")
        .agg(_aggregates({"num": "COUNT(*)"}))
        .select(
            "auction",
            _as_datetime(pl.col("__start")).alias("window_start"),
            _as_datetime(pl.col("__start") + size_ms).alias("window_end"),
            pl.col("num").cast(pl.Int64),
        )
    )


def reference_q5_bids_per_auction(n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Q5's first stage: (auction, window_start, window_end, num) bids per auction per HOP(10 s, 2 s) window."""
    return _q5_counts(n_events, config).collect()


def reference_q5(n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Q5: (window_end, max_num), the largest per-auction bid count of each HOP(10 s, 2 s) window.

    The engine's non-windowed aggregate emits updates; this is the final value per window_end.
    """
    return (
        _q5_counts(n_events, config)
        .group_by("window_end")
        .agg(_aggregates({"max_num": "MAX(num)"}))
        .collect()
    )


def reference_q8(n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Q8: persons who opened an auction in the 10 s tumbling window of their registration.

    Rows: id, name, date_time (person), seller, date_time_right (auction), window_start, window_end, one per
    (person, auction) pair with id = seller whose date_times fall in the same epoch-aligned 10 s window.
    """
    size_ms = 10 * _MS
    window = (_epoch_ms("date_time") // size_ms) * size_ms
    persons = (
        bounded_events("person", n_events, config)
        .lazy()
        .select(_project({"id": "id", "name": "name", "date_time": "date_time"}))
        .with_columns(window.alias("__window"))
    )
    auctions = (
        bounded_events("auction", n_events, config)
        .lazy()
        .select(_project({"seller": "seller", "date_time": "date_time"}))
        .with_columns(window.alias("__window"))
    )
    return (
        persons.join(
            auctions,
            left_on=["id", "__window"],
            right_on=["seller", "__window"],
            how="inner",
            coalesce=False,
            suffix="_right",
        )
        .select(
            "id",
            "name",
            "date_time",
            "seller",
            "date_time_right",
            _as_datetime(pl.col("__window")).alias("window_start"),
            _as_datetime(pl.col("__window") + size_ms).alias("window_end"),
        )
        .collect()
    )


def reference_q11(n_events: int, config: NexmarkConfig) -> pl.DataFrame:
    """Q11: (bidder, window_start, window_end, bid_count) per bidder session (10 s gap).

    A bidder's session ends where the next bid of that bidder comes >= 10 s later; window_start is the
    session's first bid time, window_end its last bid time + 10 s.
    """
    gap_ms = 10 * _MS
    t = _epoch_ms("date_time")
    return (
        bounded_events("bid", n_events, config)
        .lazy()
        .select(_project({"bidder": "bidder", "date_time": "date_time"}))
        .sort("bidder", "date_time")
        .with_columns(
            (t.diff().over("bidder").fill_null(gap_ms) >= gap_ms).cum_sum().over("bidder").alias("__session")
        )
        .group_by("bidder", "__session")
        .agg(
            pl.col("date_time").min().alias("window_start"),
            (pl.col("date_time").max() + pl.duration(milliseconds=gap_ms)).alias("window_end"),
            *_aggregates({"bid_count": "COUNT(*)"}),
        )
        .select("bidder", "window_start", "window_end", pl.col("bid_count").cast(pl.Int64))
        .collect()
    )
