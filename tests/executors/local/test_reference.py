"""Sanity checks of the reference query results (reference.py) on small bounded streams."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import (
    bounded_events,
    reference_q1,
    reference_q2,
    reference_q3,
    reference_q5,
    reference_q5_bids_per_auction,
    reference_q8,
    reference_q11,
)
from streamtune_cli.executors.local.nexmark import NexmarkConfig, ordinals_below

# 1,000 events per second of event time: 60,000 events span 60 s, several 10 s windows and sessions.
CFG = NexmarkConfig(seed=4, events_per_second=1_000.0)
N = 60_000
MS = pl.Datetime("ms")


def _ms(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].dt.epoch("ms").to_numpy()


@pytest.mark.parametrize("kind", ["person", "auction", "bid"])
def test_bounded_events_are_the_events_below_n(kind: str) -> None:
    frame = bounded_events(kind, N, CFG)
    assert frame.height == ordinals_below(kind, N)
    assert frame.schema["date_time"] == MS


def test_q1_converts_every_bid() -> None:
    bids = bounded_events("bid", N, CFG)
    out = reference_q1(N, CFG)
    assert out.columns == ["auction", "bidder", "price", "date_time"]
    assert out.height == bids.height
    assert out["auction"].equals(bids["auction"]) and out["date_time"].equals(bids["date_time"])
    np.testing.assert_allclose(out["price"].cast(pl.Float64).to_numpy(), bids["price"].to_numpy() * 0.908)


def test_q2_keeps_sampled_auctions() -> None:
    bids = bounded_events("bid", N, CFG)
    out = reference_q2(N, CFG)
    assert out.columns == ["auction", "price"]
    assert out.height > 0
    assert (out["auction"] % 123 == 0).all()
    assert out.height == int((bids["auction"] % 123 == 0).sum())


def test_q3_matches_a_dictionary_join() -> None:
    persons = bounded_events("person", N, CFG)
    auctions = bounded_events("auction", N, CFG)
    local = {
        row["id"]: (row["name"], row["city"], row["state"])
        for row in persons.iter_rows(named=True)
        if row["state"] in ("OR", "ID", "CA")
    }
    expected = sorted(
        (*local[row["seller"]], row["id"])
        for row in auctions.iter_rows(named=True)
        if row["category"] == 10 and row["seller"] in local
    )
    out = reference_q3(N, CFG)
    assert out.columns == ["name", "city", "state", "auction_id"]
    assert len(expected) > 0
    assert sorted(out.iter_rows()) == expected


def test_q5_counts_every_bid_in_five_windows() -> None:
    bids = bounded_events("bid", N, CFG)
    counts = reference_q5_bids_per_auction(N, CFG)
    assert counts.columns == ["auction", "window_start", "window_end", "num"]
    assert counts.schema["num"] == pl.Int64
    assert counts.schema["window_start"] == MS and counts.schema["window_end"] == MS
    # HOP(10 s, 2 s): each bid lies in exactly 10 / 2 = 5 windows, edges of the stream included.
    assert int(counts["num"].sum()) == 5 * bids.height
    start, end = _ms(counts, "window_start"), _ms(counts, "window_end")
    assert np.all(start % 2000 == 0) and np.all(end - start == 10_000)
    assert counts.select(pl.struct("auction", "window_start").is_unique().all()).item()

    out = reference_q5(N, CFG)
    assert out.columns == ["window_end", "max_num"]
    assert out.schema["max_num"] == pl.Int64
    expected = counts.group_by("window_end").agg(pl.col("num").max()).sort("window_end")
    assert out.sort("window_end")["max_num"].to_list() == expected["num"].to_list()
    # Every window that holds a bid has a maximum, and the windows run over the whole stream.
    t = _ms(bids, "date_time")
    first_end = (t.min() // 2000) * 2000 + 2000
    last_end = (t.max() // 2000) * 2000 + 10_000
    assert sorted(_ms(out, "window_end").tolist()) == list(range(first_end, last_end + 1, 2000))


def test_q8_pairs_share_seller_and_window() -> None:
    out = reference_q8(N, CFG)
    assert out.columns == ["id", "name", "date_time", "seller", "date_time_right", "window_start", "window_end"]
    assert out.height > 0
    assert (out["id"] == out["seller"]).all()
    start, end = _ms(out, "window_start"), _ms(out, "window_end")
    assert np.all(start % 10_000 == 0) and np.all(end - start == 10_000)
    for column in ("date_time", "date_time_right"):
        t = _ms(out, column)
        assert np.all((start <= t) & (t < end))
    # Brute force: every (person, auction) pair with id = seller in the same 10 s window is there once.
    persons = bounded_events("person", N, CFG)
    auctions = bounded_events("auction", N, CFG)
    by_key: dict[tuple[int, int], int] = defaultdict(int)
    for seller, t in zip(auctions["seller"].to_list(), _ms(auctions, "date_time").tolist()):
        by_key[(seller, t // 10_000)] += 1
    expected = sum(by_key.get((pid, t // 10_000), 0) for pid, t in zip(persons["id"], _ms(persons, "date_time")))
    assert out.height == expected


def _sessions(times_by_key: dict[int, list[int]], gap: int) -> list[tuple[int, int, int, int]]:
    sessions = []
    for key, times in times_by_key.items():
        times = sorted(times)
        first = prev = times[0]
        count = 0
        for t in times:
            if t - prev >= gap:
                sessions.append((key, first, prev + gap, count))
                first, count = t, 0
            prev = t
            count += 1
        sessions.append((key, first, prev + gap, count))
    return sorted(sessions)


def test_q11_sessions_match_a_loop() -> None:
    bids = bounded_events("bid", N, CFG)
    out = reference_q11(N, CFG)
    assert out.columns == ["bidder", "window_start", "window_end", "bid_count"]
    assert out.schema["bid_count"] == pl.Int64
    assert int(out["bid_count"].sum()) == bids.height
    by_key: dict[int, list[int]] = defaultdict(list)
    for bidder, t in zip(bids["bidder"].to_list(), _ms(bids, "date_time").tolist()):
        by_key[bidder].append(t)
    got = sorted(zip(out["bidder"].to_list(), _ms(out, "window_start").tolist(), _ms(out, "window_end").tolist(),
                     out["bid_count"].to_list()))  # fmt: skip
    assert got == _sessions(by_key, 10_000)
    assert any(count > 1 for *_, count in got) and len({k for k, *_ in got}) < len(got)


@settings(max_examples=10)
@given(
    n=st.integers(0, 3_000),
    rate=st.sampled_from([10.0, 100.0, 1_000.0]),
    seed=st.integers(0, 2**32),
)
def test_references_on_tiny_streams(n: int, rate: float, seed: int) -> None:
    cfg = NexmarkConfig(seed=seed, events_per_second=rate)
    bids = ordinals_below("bid", n)
    assert reference_q1(n, cfg).height == bids
    counts = reference_q5_bids_per_auction(n, cfg)
    assert int(counts["num"].sum()) == 5 * bids
    assert reference_q5(n, cfg).height == counts["window_end"].n_unique()
    assert int(reference_q11(n, cfg)["bid_count"].sum()) == bids
    assert reference_q2(n, cfg).columns == ["auction", "price"]
    assert reference_q3(n, cfg).columns == ["name", "city", "state", "auction_id"]
    q8 = reference_q8(n, cfg)
    assert q8.columns == ["id", "name", "date_time", "seller", "date_time_right", "window_start", "window_end"]
    assert (q8["id"] == q8["seller"]).all()
