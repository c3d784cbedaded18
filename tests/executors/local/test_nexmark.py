"""The Nexmark generator: schemas, determinism, the 1:3:46 event split, referential integrity, time, sizes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.executors.local import nexmark as nx
from streamtune_cli.executors.local.nexmark import (
    EVENT_KINDS,
    PER_50,
    NexmarkConfig,
    datagen_schema,
    event_time_ms,
    generate,
    generate_datagen,
    global_event_number,
    ordinals_below,
    schema,
)
from streamtune_cli.spec.models import NEXMARK_EVENT_BYTES, NEXMARK_EVENT_MIX

CFG = NexmarkConfig(seed=11)
kinds = st.sampled_from(EVENT_KINDS)
seeds = st.integers(min_value=-(2**70), max_value=2**70)
# Large ordinals too: a long-running job reaches billions of events.
ordinal_lists = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=60)

FIELDS = {
    "person": ["id", "name", "email_address", "credit_card", "city", "state", "date_time", "extra"],
    "auction": [
        "id", "item_name", "description", "initial_bid", "reserve",
        "date_time", "expires", "seller", "category", "extra",
    ],  # fmt: skip
    "bid": ["auction", "bidder", "price", "channel", "url", "date_time", "extra"],
}


def _ords(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# ------------------------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_schema_fields_and_types(kind: str) -> None:
    sch = schema(kind)
    assert sch.names == FIELDS[kind]
    for field in sch:
        if field.name in ("date_time", "expires"):
            assert field.type == pa.timestamp("ms")
        elif field.name in ("id", "auction", "bidder", "price", "initial_bid", "reserve", "seller", "category"):
            assert field.type == pa.int64()
        else:
            assert field.type == pa.string()
    batch = generate(kind, np.arange(100), CFG)
    assert batch.schema.equals(sch)
    assert batch.num_rows == 100
    assert all(batch.column(i).null_count == 0 for i in range(batch.num_columns))


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_empty_ordinals(kind: str) -> None:
    batch = generate(kind, np.array([], dtype=np.int64), CFG)
    assert batch.num_rows == 0 and batch.schema.equals(schema(kind))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        generate("bids", np.arange(3), CFG)
    with pytest.raises(ValueError):
        generate("bid", np.array([0, -1]), CFG)
    with pytest.raises(ValueError):
        ordinals_below("bid", -1)
    with pytest.raises(ValueError):
        NexmarkConfig(events_per_second=0)
    with pytest.raises(ValueError):
        global_event_number("persons", np.arange(2))


def test_constants_match_the_spec_model() -> None:
    assert PER_50 == NEXMARK_EVENT_MIX and sum(PER_50.values()) == 50
    assert nx.TARGET_BYTES == NEXMARK_EVENT_BYTES


# ------------------------------------------------------------------------------------------- determinism


@settings(max_examples=40)
@given(kind=kinds, ordinals=ordinal_lists, seed=seeds, data=st.data())
def test_rows_depend_on_ordinal_only(kind: str, ordinals: list[int], seed: int, data: st.DataObject) -> None:
    cfg = NexmarkConfig(seed=seed, events_per_second=50_000.0)
    whole = pa.Table.from_batches([generate(kind, _ords(ordinals), cfg)])
    # The same ordinals in another order and cut into chunks give the same row per ordinal.
    perm = data.draw(st.permutations(range(len(ordinals))), label="order")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(ordinals)), max_size=4), label="cuts"))
    permuted = _ords(ordinals)[list(perm)]
    bounds = [0, *cuts, len(ordinals)]
    chunks = [generate(kind, permuted[a:b], cfg) for a, b in zip(bounds, bounds[1:])]
    shuffled = pa.Table.from_batches(chunks, schema=schema(kind))
    inverse = np.argsort(np.asarray(perm))
    assert shuffled.take(pa.array(inverse)).equals(whole)


@settings(max_examples=15)
@given(kind=kinds, start=st.integers(0, 10**10))
def test_seed_changes_the_rows(kind: str, start: int) -> None:
    ords = np.arange(start, start + 64)
    a = generate(kind, ords, NexmarkConfig(seed=1))
    b = generate(kind, ords, NexmarkConfig(seed=2))
    assert not a.equals(b)
    assert a.equals(generate(kind, ords, NexmarkConfig(seed=1)))


_DIGEST = """
import hashlib
import numpy as np
from streamtune_cli.executors.local.nexmark import EVENT_KINDS, NexmarkConfig, generate

def digest(seed):
    h = hashlib.sha256()
    for kind in EVENT_KINDS:
        batch = generate(kind, np.array([0, 7, 123_456, 10**11]), NexmarkConfig(seed=seed))
        h.update(repr(batch.to_pylist()).encode())
    return h.hexdigest()
"""


def test_another_process_generates_the_same_rows() -> None:
    namespace: dict = {}
    exec(_DIGEST, namespace)
    code = _DIGEST + "\nprint(digest(5))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        env={"PYTHONHASHSEED": "12345"},
    )  # fmt: skip
    assert out.stdout.strip() == namespace["digest"](5)


# ------------------------------------------------------------------------------------------ proportions


@settings(max_examples=200)
@given(n=st.integers(min_value=0, max_value=10**13))
def test_ordinals_below_splits_events_1_3_46(n: int) -> None:
    counts = {kind: ordinals_below(kind, n) for kind in EVENT_KINDS}
    assert sum(counts.values()) == n
    for kind, count in counts.items():
        # Exactly the first `count` ordinals lie below n.
        if count:
            assert int(global_event_number(kind, _ords([count - 1]))[0]) < n
        assert int(global_event_number(kind, _ords([count]))[0]) >= n
        # Whole blocks hold exactly PER_50 events of each kind.
        assert counts[kind] - (n // 50) * PER_50[kind] in range(PER_50[kind] + 1)


@settings(max_examples=30)
@given(start_block=st.integers(0, 10**9), blocks=st.integers(1, 4))
def test_kinds_partition_the_global_numbers(start_block: int, blocks: int) -> None:
    lo, hi = start_block * 50, (start_block + blocks) * 50
    numbers = []
    for kind in EVENT_KINDS:
        ords = np.arange(ordinals_below(kind, lo), ordinals_below(kind, hi))
        assert len(ords) == blocks * PER_50[kind]
        g = global_event_number(kind, ords)
        assert np.all(np.diff(g) > 0)
        positions = set((g % 50).tolist())
        assert positions == {"person": {0}, "auction": {1, 2, 3}, "bid": set(range(4, 50))}[kind]
        numbers.append(g)
    assert np.array_equal(np.sort(np.concatenate(numbers)), np.arange(lo, hi))


# -------------------------------------------------------------------------------- referential integrity


@settings(max_examples=30)
@given(start=st.integers(0, 10**10), seed=seeds)
def test_auction_sellers_were_generated_before(start: int, seed: int) -> None:
    ords = np.arange(start, start + 300)
    batch = generate("auction", ords, NexmarkConfig(seed=seed))
    own = global_event_number("auction", ords)
    seller = batch.column("seller").to_numpy() - nx.FIRST_PERSON_ID
    assert np.all(seller >= 0)
    # The seller's person event comes before the auction's.
    assert np.all(global_event_number("person", seller) < own)
    assert np.array_equal(batch.column("id").to_numpy(), nx.FIRST_AUCTION_ID + ords)


@settings(max_examples=30)
@given(start=st.integers(0, 10**10), seed=seeds)
def test_bid_auctions_and_bidders_were_generated_before(start: int, seed: int) -> None:
    ords = np.arange(start, start + 500)
    batch = generate("bid", ords, NexmarkConfig(seed=seed))
    own = global_event_number("bid", ords)
    auction = batch.column("auction").to_numpy() - nx.FIRST_AUCTION_ID
    bidder = batch.column("bidder").to_numpy() - nx.FIRST_PERSON_ID
    assert np.all(auction >= 0) and np.all(bidder >= 0)
    assert np.all(global_event_number("auction", auction) < own)
    assert np.all(global_event_number("person", bidder) < own)


def test_references_are_mostly_recent_and_hot() -> None:
    ords = np.arange(5_000_000, 5_020_000)
    bids = generate("bid", ords, CFG)
    own = global_event_number("bid", ords)
    auctions_before = np.array([ordinals_below("auction", int(n)) for n in own[::1000]])
    auction = bids.column("auction").to_numpy() - nx.FIRST_AUCTION_ID
    # Every bid goes to one of the auctions in flight (the latest 100), about half to the hot one.
    assert np.all(auction[::1000] >= auctions_before - nx.NUM_IN_FLIGHT_AUCTIONS)
    hot = auction % nx.HOT_ID_SPACING == 0
    assert 0.45 < hot.mean() < 0.6
    auctions = generate("auction", np.arange(3_000_000, 3_010_000), CFG)
    own_a = global_event_number("auction", np.arange(3_000_000, 3_010_000))
    persons_before = (own_a + 49) // 50
    seller = auctions.column("seller").to_numpy() - nx.FIRST_PERSON_ID
    recent = seller >= persons_before - nx.NUM_ACTIVE_PEOPLE
    # 15/16 among the active people; the rest may be any earlier person.
    assert 0.9 < recent.mean() < 0.97
    assert (seller % nx.HOT_ID_SPACING == 0).mean() > 0.7


# ------------------------------------------------------------------------------------------ field values


def test_field_values_look_like_nexmark() -> None:
    ords = np.arange(20_000)
    p = generate("person", ords[:5000], CFG).to_pydict()
    assert p["id"] == list(range(1000, 6000))
    assert set(p["state"]) == set(nx.STATES)
    assert all(len(c) == 19 and c[4] == " " for c in p["credit_card"][:200])
    assert all("@" in e and e.endswith(".com") for e in p["email_address"][:200])
    city_state = dict(nx._CITIES)
    assert all(city_state[c] == s for c, s in zip(p["city"], p["state"]))

    a = generate("auction", ords, CFG)
    category = a.column("category").to_numpy()
    assert set(category.tolist()) == set(range(10, 15))
    assert 0.17 < (category == 10).mean() < 0.23
    initial, reserve = a.column("initial_bid").to_numpy(), a.column("reserve").to_numpy()
    assert np.all(initial > 0) and np.all(reserve > initial)
    dt = a.column("date_time").cast(pa.int64()).to_numpy()
    expires = a.column("expires").cast(pa.int64()).to_numpy()
    assert np.all(expires > dt)

    b = generate("bid", ords, CFG).to_pydict()
    price = np.asarray(b["price"])
    assert price.min() >= 100 and price.max() <= 10**8
    assert np.median(price) < price.mean() / 10  # skewed towards small prices
    assert set(b["channel"]) == set(nx.CHANNELS)
    hosts = {"Google": "google.com", "Facebook": "facebook.com", "Baidu": "baidu.com", "Apple": "apple.com"}
    assert all(u.startswith(f"https://{hosts[c]}/") for c, u in zip(b["channel"], b["url"]))


# ------------------------------------------------------------------------------------------------- time


@settings(max_examples=40)
@given(
    start=st.integers(0, 10**11),
    rate=st.floats(min_value=1.0, max_value=1e8, allow_nan=False),
    base=st.integers(0, 2 * 10**12),
)
def test_event_time_is_non_decreasing_in_the_global_number(start: int, rate: float, base: int) -> None:
    cfg = NexmarkConfig(seed=3, events_per_second=rate, base_time_ms=base)
    lo, hi = start, start + 200
    numbers, times = [], []
    for kind in EVENT_KINDS:
        ords = np.arange(ordinals_below(kind, lo), ordinals_below(kind, hi))
        batch = generate(kind, ords, cfg)
        g = global_event_number(kind, ords)
        t = batch.column("date_time").cast(pa.int64()).to_numpy()
        assert np.array_equal(t, event_time_ms(cfg, g))
        numbers.append(g)
        times.append(t)
    order = np.argsort(np.concatenate(numbers))
    merged = np.concatenate(times)[order]
    assert np.all(np.diff(merged) >= 0)
    expected = base + np.floor(np.concatenate(numbers)[order] * 1000.0 / rate).astype(np.int64)
    assert np.array_equal(merged, expected)


def test_event_time_rate() -> None:
    cfg = NexmarkConfig(events_per_second=1_000_000.0, base_time_ms=5)
    assert event_time_ms(cfg, np.array([0, 999, 1000, 2_500_000])).tolist() == [5, 5, 6, 2505]


# ------------------------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("kind", EVENT_KINDS)
@pytest.mark.parametrize("start", [0, 123_456_789])
def test_average_record_size(kind: str, start: int) -> None:
    batch = generate(kind, np.arange(start, start + 10_000), CFG)
    average = batch.nbytes / batch.num_rows
    target = NEXMARK_EVENT_BYTES[kind]
    assert 0.9 * target <= average <= 1.1 * target, (kind, average)


# ------------------------------------------------------------------------------------------------ datagen


@pytest.mark.parametrize("record_bytes", [0, 16, 28, 64, 100, 1000])
def test_datagen_record_size(record_bytes: int) -> None:
    batch = generate_datagen(np.arange(10_000), CFG, record_bytes=record_bytes)
    assert batch.schema.equals(datagen_schema(record_bytes))
    average = batch.nbytes / batch.num_rows
    if record_bytes <= 28:  # id, key, date_time and the payload's offset take 28 bytes
        assert pc.max(pc.utf8_length(batch.column("payload"))).as_py() == 0
    else:
        assert 0.9 * record_bytes <= average <= 1.1 * record_bytes


@settings(max_examples=30)
@given(ordinals=ordinal_lists, keys=st.integers(1, 10**6), seed=seeds, data=st.data())
def test_datagen_rows(ordinals: list[int], keys: int, seed: int, data: st.DataObject) -> None:
    cfg = NexmarkConfig(seed=seed, events_per_second=12_345.0)
    ords = _ords(ordinals)
    batch = generate_datagen(ords, cfg, keys=keys, record_bytes=80)
    assert batch.schema.names == ["id", "key", "date_time", "payload"]
    assert batch.column("id").to_numpy().tolist() == ordinals
    key = batch.column("key").to_numpy()
    assert np.all((key >= 0) & (key < keys))
    assert np.array_equal(batch.column("date_time").cast(pa.int64()).to_numpy(), event_time_ms(cfg, ords))
    perm = data.draw(st.permutations(range(len(ordinals))))
    again = generate_datagen(ords[list(perm)], cfg, keys=keys, record_bytes=80)
    assert again.take(pa.array(np.argsort(np.asarray(perm)))).equals(batch)


def test_datagen_keys_spread() -> None:
    key = generate_datagen(np.arange(50_000), CFG, keys=10).column("key").to_numpy()
    counts = np.bincount(key, minlength=10)
    assert counts.min() > 4_500 and counts.max() < 5_500
