"""Nexmark event generator for the local engine: persons, auctions and bids as Arrow record batches.

The stream follows the Nexmark benchmark (Tucker et al.; the Beam/Flink generators) in spirit. Events carry
a global number n = 0, 1, 2, ...; in every block of 50 events the first is a person, the next 3 are auctions
and the remaining 46 are bids. Within its kind an event is addressed by its ordinal k (the k-th person, the
k-th auction, the k-th bid), and every field is a pure function of (seed, kind, k): a counter-based hash
(the splitmix64 finalizer over uint64 numpy arrays, salted per field) replaces sequential RNG state. Any set
of ordinals can therefore be generated in any order, in any chunking, by any process, with identical rows.

Strings are taken by index from pools built once (lazily, deterministically) per process; no per-row Python
runs anywhere. References always point backwards in the stream: an auction's seller is a person generated
before the auction, a bid's auction and bidder were generated before the bid. Most references go to recent
"hot" ids (multiples of HOT_ID_SPACING), the rest to recent ids or (a few sellers and bidders) any earlier
person.

Event time is a function of the global number only: `base_time_ms + floor(n * 1000 / events_per_second)`,
so it is non-decreasing along the stream and equal for all processes.

The `extra` padding is sized so that the average Arrow size of a record (batch.nbytes / rows) is about
NEXMARK_EVENT_BYTES: 200 bytes for a person, 500 for an auction, 100 for a bid.

`generate_datagen` is the small generic generator for sources without a Nexmark generator.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

__all__ = [
    "EVENT_KINDS",
    "PER_50",
    "BLOCK",
    "FIRST_PERSON_ID",
    "FIRST_AUCTION_ID",
    "FIRST_CATEGORY_ID",
    "NUM_CATEGORIES",
    "TARGET_BYTES",
    "NexmarkConfig",
    "global_event_number",
    "ordinals_below",
    "event_time_ms",
    "schema",
    "generate",
    "datagen_schema",
    "generate_datagen",
]

EVENT_KINDS: Final = ("person", "auction", "bid")
PER_50: Final = {"person": 1, "auction": 3, "bid": 46}
BLOCK: Final = 50
# Position of each kind's first event inside a block of 50: person at 0, auctions at 1..3, bids at 4..49.
_OFFSET: Final = {"person": 0, "auction": 1, "bid": 4}

FIRST_PERSON_ID: Final = 1000
FIRST_AUCTION_ID: Final = 1000
FIRST_CATEGORY_ID: Final = 10
NUM_CATEGORIES: Final = 5
# "Hot" sellers, bidders and auctions are the latest id whose ordinal is a multiple of this.
HOT_ID_SPACING: Final = 100
# Non-hot references are drawn among this many latest auctions / persons.
NUM_IN_FLIGHT_AUCTIONS: Final = 100
NUM_ACTIVE_PEOPLE: Final = 1000
# Reference mix, in 16ths (drawn from 4 hash bits): hot, then recent, then (persons only) any earlier one.
_SELLER_HOT_16: Final = 12  # 3/4 hot sellers
_SELLER_RECENT_16: Final = 3  # 3/16 among the active people, 1/16 any earlier person
_BIDDER_HOT_16: Final = 12  # 3/4 hot bidders
_BIDDER_RECENT_16: Final = 3  # 3/16 among the active people, 1/16 any earlier person (a returning user)
_AUCTION_HOT_16: Final = 8  # 1/2 hot auctions, the rest among the auctions in flight
# Auctions run between these many milliseconds after they open.
_AUCTION_LENGTH_MS: Final = (10_000, 120_000)

# Average Arrow bytes per record (batch.nbytes / rows) the `extra` padding aims at.
TARGET_BYTES: Final = {"person": 200, "auction": 500, "bid": 100}

_TS: Final = pa.timestamp("ms")
_SCHEMAS: Final = {
    "person": pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("email_address", pa.string()),
            ("credit_card", pa.string()),
            ("city", pa.string()),
            ("state", pa.string()),
            ("date_time", _TS),
            ("extra", pa.string()),
        ]
    ),
    "auction": pa.schema(
        [
            ("id", pa.int64()),
            ("item_name", pa.string()),
            ("description", pa.string()),
            ("initial_bid", pa.int64()),
            ("reserve", pa.int64()),
            ("date_time", _TS),
            ("expires", _TS),
            ("seller", pa.int64()),
            ("category", pa.int64()),
            ("extra", pa.string()),
        ]
    ),
    "bid": pa.schema(
        [
            ("auction", pa.int64()),
            ("bidder", pa.int64()),
            ("price", pa.int64()),
            ("channel", pa.string()),
            ("url", pa.string()),
            ("date_time", _TS),
            ("extra", pa.string()),
        ]
    ),
}


@dataclass(frozen=True)
class NexmarkConfig:
    """What the generated stream depends on: the hash seed, the event-time rate and the time origin."""

    seed: int = 0
    events_per_second: float = 1_000_000.0  # event-time rate of the whole stream (all kinds together)
    base_time_ms: int = 1_700_000_000_000

    def __post_init__(self) -> None:
        if not (self.events_per_second > 0 and np.isfinite(self.events_per_second)):
            raise ValueError(f"events_per_second must be positive and finite, not {self.events_per_second}")


# --------------------------------------------------------------------------------------------- numbering


def _check_kind(kind: str) -> None:
    if kind not in PER_50:
        raise ValueError(f"unknown Nexmark event kind {kind!r} (expected one of {', '.join(EVENT_KINDS)})")


def _as_ordinals(ordinals: np.ndarray) -> np.ndarray:
    arr = np.asarray(ordinals)
    if arr.ndim != 1:
        raise ValueError(f"ordinals must be one-dimensional, not of shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"ordinals must be integers, not {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and int(arr.min()) < 0:
        raise ValueError("ordinals must be non-negative")
    return arr


def global_event_number(kind: str, ordinals: np.ndarray) -> np.ndarray:
    """The global event number (int64) of the `ordinals`-th events of `kind`."""
    _check_kind(kind)
    k = _as_ordinals(ordinals)
    per = PER_50[kind]
    return (k // per) * BLOCK + _OFFSET[kind] + (k % per)


def _below(kind: str, n: np.ndarray) -> np.ndarray:
    # Vectorized ordinals_below for non-negative int64 n.
    per, off = PER_50[kind], _OFFSET[kind]
    return (n // BLOCK) * per + np.clip(n % BLOCK - off, 0, per)


def ordinals_below(kind: str, n_events: int) -> int:
    """How many events of `kind` have a global number below `n_events` (their ordinals are 0..result-1)."""
    _check_kind(kind)
    n = int(n_events)
    if n < 0:
        raise ValueError(f"n_events must be non-negative, not {n}")
    per, off = PER_50[kind], _OFFSET[kind]
    return (n // BLOCK) * per + min(max(n % BLOCK - off, 0), per)


def event_time_ms(config: NexmarkConfig, n: np.ndarray) -> np.ndarray:
    """Event time (epoch ms, int64) of global event numbers `n`: base + floor(n * 1000 / events_per_second)."""
    nn = np.asarray(n, dtype=np.int64)
    # Correctly rounded division by a positive constant is monotone, and so is floor: non-decreasing in n.
    offset = np.floor(nn.astype(np.float64) * 1000.0 / float(config.events_per_second)).astype(np.int64)
    return offset + np.int64(config.base_time_ms)


def schema(kind: str) -> pa.Schema:
    """The Arrow schema of `kind`'s record batches."""
    _check_kind(kind)
    return _SCHEMAS[kind]


# ------------------------------------------------------------------------------------------------- hashing

_M64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MUL1: Final = 0xBF58476D1CE4E5B9
_MUL2: Final = 0x94D049BB133111EB
_GOLDEN_U: Final = np.uint64(_GOLDEN)
_MUL1_U: Final = np.uint64(_MUL1)
_MUL2_U: Final = np.uint64(_MUL2)
_S30: Final = np.uint64(30)
_S27: Final = np.uint64(27)
_S31: Final = np.uint64(31)
_S11: Final = np.uint64(11)
_S4: Final = np.uint64(4)
_LOW4: Final = np.uint64(15)
_INV_2_53: Final = 1.0 / (1 << 53)


def _mix_scalar(x: int) -> int:
    """splitmix64 (increment and finalizer) on a Python int, for salts."""
    z = (x + _GOLDEN) & _M64
    z = ((z ^ (z >> 30)) * _MUL1) & _M64
    z = ((z ^ (z >> 27)) * _MUL2) & _M64
    return z ^ (z >> 31)


@functools.lru_cache(maxsize=1024)
def _salt(seed: int, kind: str, field: str) -> np.uint64:
    """A 64-bit salt per (seed, kind, field): stable across processes (no Python hash())."""
    tag = int.from_bytes(hashlib.blake2b(f"{kind}.{field}".encode(), digest_size=8).digest(), "little")
    return np.uint64(_mix_scalar(_mix_scalar(seed & _M64) ^ tag))


def _hash(k: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Pseudo-random uint64 per ordinal: the splitmix64 finalizer of k * golden + salt (a bijection of k)."""
    z = k.astype(np.uint64)  # always a fresh array: worked on in place below
    z *= _GOLDEN_U
    z += salt
    z ^= z >> _S30
    z *= _MUL1_U
    z ^= z >> _S27
    z *= _MUL2_U
    z ^= z >> _S31
    return z


def _unit(h: np.ndarray) -> np.ndarray:
    """Uniform float64 in [0, 1) from the top 53 bits of a hash."""
    return (h >> _S11).astype(np.float64) * _INV_2_53


def _below_n(h: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Uniform int64 in [0, n) (n >= 1, elementwise) from a hash's top bits."""
    # floor(u * n) < n for u < 1 in exact arithmetic; the clamp guards against any float rounding up to n.
    return np.minimum(np.floor(_unit(h) * n).astype(np.int64), np.asarray(n) - 1)


def _reference(h: np.ndarray, count: np.ndarray, hot_16: int, recent_16: int, window: int) -> np.ndarray:
    """Ordinals in [0, count) of earlier entities (count >= 1): hot, recent (among `window`) or any earlier.

    The low 4 bits of `h` pick the mix: < hot_16 the hot one (the latest ordinal that is a multiple of
    HOT_ID_SPACING), < hot_16 + recent_16 one of the latest `window`, otherwise any of the `count`.
    """
    sel = h & _LOW4
    hot = ((count - 1) // HOT_ID_SPACING) * HOT_ID_SPACING
    active = np.minimum(count, window)
    recent = count - active + _below_n(h, active)
    out = np.where(sel < np.uint64(hot_16), hot, recent)
    if hot_16 + recent_16 < 16:
        anyone = _below_n(h, count)
        out = np.where(sel >= np.uint64(hot_16 + recent_16), anyone, out)
    return out


def _price(h: np.ndarray) -> np.ndarray:
    """Nexmark-like prices in cents: 100 * 10**(6u), skewed towards small values (100 .. 10**8)."""
    return np.rint(np.exp(_unit(h) * (6.0 * np.log(10.0))) * 100.0).astype(np.int64)


# --------------------------------------------------------------------------------------------------- pools

_FIRST_NAMES: Final = (
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie",
    "Sarah", "Deiter", "Walter", "Maria", "Ahmed", "Yuki", "Olga", "Diego",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones",
    "Noris", "Garcia", "Nguyen", "Kowalski", "Okafor", "Tanaka", "Brown", "Lee",
)  # fmt: skip
# US cities with the state each lies in (states drawn from Nexmark's AZ, CA, ID, OR, WA, WY).
_CITIES: Final = (
    ("Phoenix", "AZ"), ("Tucson", "AZ"), ("Los Angeles", "CA"), ("San Francisco", "CA"),
    ("Boise", "ID"), ("Idaho Falls", "ID"), ("Portland", "OR"), ("Bend", "OR"),
    ("Seattle", "WA"), ("Redmond", "WA"), ("Cheyenne", "WY"), ("Casper", "WY"),
)  # fmt: skip
STATES: Final = ("AZ", "CA", "ID", "OR", "WA", "WY")
CHANNELS: Final = ("Google", "Facebook", "Baidu", "Apple")
_CHANNEL_HOSTS: Final = ("google.com", "facebook.com", "baidu.com", "apple.com")

_POOL_SIZE: Final = 4096  # entries in each generated string pool (a power of two)
_URLS_PER_CHANNEL: Final = 256
_PAD_ENTRIES: Final = 1024  # padding pool entries (lengths spread evenly around the wanted mean)


def _string_array(strings: list[str]) -> pa.StringArray:
    return pa.array(strings, type=pa.string())


def _from_lengths(lengths: np.ndarray, data: np.ndarray) -> pa.StringArray:
    """A string array whose i-th entry is the next lengths[i] bytes of `data` (ASCII)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = np.ascontiguousarray(data[: int(offsets[-1])], dtype=np.uint8)
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(data))


def _random_text(rng: np.random.Generator, size: int, space_every: float = 0.0) -> np.ndarray:
    """`size` ASCII bytes: lowercase letters, with spaces at about one in `space_every` positions."""
    text = rng.integers(ord("a"), ord("z") + 1, size=size, dtype=np.uint8)
    if space_every > 0:
        text[rng.random(size) < 1.0 / space_every] = ord(" ")
    return text


def _text_pool(rng: np.random.Generator, lo: int, hi: int, space_every: float = 0.0) -> pa.StringArray:
    """_POOL_SIZE random texts with lengths uniform in [lo, hi]."""
    lengths = rng.integers(lo, hi + 1, size=_POOL_SIZE)
    return _from_lengths(lengths, _random_text(rng, int(lengths.sum()), space_every))


def _mean_len(pool: pa.StringArray) -> float:
    """Average byte length of a pool's entries (each drawn with equal probability)."""
    offsets = np.frombuffer(pool.buffers()[1], dtype=np.int32)[pool.offset : pool.offset + len(pool) + 1]
    return float(offsets[-1] - offsets[0]) / len(pool)


@functools.lru_cache(maxsize=64)
def _padding_pool(mean_len: int) -> pa.StringArray:
    """_PAD_ENTRIES random strings whose lengths are evenly spread over [0, 2 * mean_len] (mean: mean_len)."""
    mean_len = max(int(mean_len), 0)
    # linspace is symmetric around mean_len and rint is odd-symmetric: the lengths average mean_len exactly.
    lengths = np.rint(np.linspace(0.0, 2.0 * mean_len, _PAD_ENTRIES)).astype(np.int64)
    rng = np.random.default_rng([0x5EED, mean_len])
    return _from_lengths(lengths, _random_text(rng, int(lengths.sum()), space_every=9.0))


@dataclass(frozen=True)
class _Pools:
    names: pa.StringArray
    emails: pa.StringArray
    cards: pa.StringArray
    cities: pa.StringArray
    city_states: pa.StringArray
    item_names: pa.StringArray
    descriptions: pa.StringArray
    channels: pa.StringArray
    urls: pa.StringArray  # _URLS_PER_CHANNEL per channel, channel-major
    extra: dict[str, pa.StringArray]


def _fixed_bytes(kind: str) -> int:
    """Arrow bytes per row of the fixed-width columns plus 4 offset bytes per string column."""
    total = 0
    for field in _SCHEMAS[kind]:
        total += 4 if pa.types.is_string(field.type) else field.type.bit_width // 8
    return total


@functools.lru_cache(maxsize=1)
def _pools() -> _Pools:
    rng = np.random.default_rng(0x4E45584D)  # fixed: the pools are the same in every process
    names = _string_array([f"{first} {last}" for first in _FIRST_NAMES for last in _LAST_NAMES])
    # email: user@domain.com with user 3..10 and domain 3..8 letters.
    user_len = rng.integers(3, 11, size=_POOL_SIZE)
    dom_len = rng.integers(3, 9, size=_POOL_SIZE)
    users = _from_lengths(user_len, _random_text(rng, int(user_len.sum())))
    domains = _from_lengths(dom_len, _random_text(rng, int(dom_len.sum())))
    emails = _string_array([f"{u}@{d}.com" for u, d in zip(users.to_pylist(), domains.to_pylist())])
    digits = rng.integers(ord("0"), ord("9") + 1, size=(_POOL_SIZE, 19), dtype=np.uint8)
    digits[:, [4, 9, 14]] = ord(" ")  # "dddd dddd dddd dddd"
    cards = _from_lengths(np.full(_POOL_SIZE, 19), digits.reshape(-1))
    cities = _string_array([c for c, _ in _CITIES])
    city_states = _string_array([s for _, s in _CITIES])
    item_names = _text_pool(rng, 8, 32, space_every=7.0)
    descriptions = _text_pool(rng, 40, 160, space_every=7.0)
    channels = _string_array(list(CHANNELS))
    tok_len = rng.integers(5, 13, size=len(CHANNELS) * _URLS_PER_CHANNEL)
    tokens = _from_lengths(tok_len, _random_text(rng, int(tok_len.sum()))).to_pylist()
    urls = _string_array(
        [f"https://{_CHANNEL_HOSTS[i // _URLS_PER_CHANNEL]}/{tok}" for i, tok in enumerate(tokens)]
    )
    # Every pool below is drawn uniformly, so a record's expected size is the fixed part plus the pool means.
    variable = {
        "person": _mean_len(names) + _mean_len(emails) + _mean_len(cards) + _mean_len(cities) + _mean_len(city_states),
        "auction": _mean_len(item_names) + _mean_len(descriptions),
        "bid": _mean_len(channels) + _mean_len(urls),
    }
    extra = {
        kind: _padding_pool(max(0, round(TARGET_BYTES[kind] - _fixed_bytes(kind) - variable[kind])))
        for kind in EVENT_KINDS
    }
    return _Pools(names, emails, cards, cities, city_states, item_names, descriptions, channels, urls, extra)


def _take(pool: pa.StringArray, index: np.ndarray) -> pa.Array:
    return pool.take(pa.array(index.astype(np.int32, copy=False)))


def _pick(pool: pa.StringArray, h: np.ndarray) -> pa.Array:
    """A uniformly drawn entry of `pool` per hash."""
    return _take(pool, h % np.uint64(len(pool)))


def _int64(values: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values, dtype=np.int64), type=pa.int64())


def _timestamps(values_ms: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values_ms, dtype=np.int64), type=pa.int64()).view(_TS)


# ------------------------------------------------------------------------------------------------ generate


def generate(kind: str, ordinals: np.ndarray, config: NexmarkConfig) -> pa.RecordBatch:
    """The events of `kind` with the given ordinals, one row per ordinal in the given order."""
    _check_kind(kind)
    k = _as_ordinals(ordinals)
    pools = _pools()
    seed = int(config.seed)
    n = global_event_number(kind, k)
    date_time = event_time_ms(config, n)

    def h(field: str) -> np.ndarray:
        return _hash(k, _salt(seed, kind, field))

    if kind == "person":
        city = (h("city") % np.uint64(len(pools.cities))).astype(np.int32)
        arrays = [
            _int64(FIRST_PERSON_ID + k),
            _pick(pools.names, h("name")),
            _pick(pools.emails, h("email_address")),
            _pick(pools.cards, h("credit_card")),
            _take(pools.cities, city),
            _take(pools.city_states, city),
            _timestamps(date_time),
            _pick(pools.extra[kind], h("extra")),
        ]
    elif kind == "auction":
        persons = _below("person", n)  # >= 1: every block opens with a person
        seller = _reference(h("seller"), persons, _SELLER_HOT_16, _SELLER_RECENT_16, NUM_ACTIVE_PEOPLE)
        initial = _price(h("initial_bid"))
        reserve = initial + _price(h("reserve"))
        lo, hi = _AUCTION_LENGTH_MS
        expires = date_time + lo + (h("expires") % np.uint64(hi - lo + 1)).astype(np.int64)
        category = FIRST_CATEGORY_ID + (h("category") % np.uint64(NUM_CATEGORIES)).astype(np.int64)
        arrays = [
            _int64(FIRST_AUCTION_ID + k),
            _pick(pools.item_names, h("item_name")),
            _pick(pools.descriptions, h("description")),
            _int64(initial),
            _int64(reserve),
            _timestamps(date_time),
            _timestamps(expires),
            _int64(FIRST_PERSON_ID + seller),
            _int64(category),
            _pick(pools.extra[kind], h("extra")),
        ]
    else:  # bid
        persons = _below("person", n)
        auctions = _below("auction", n)  # >= 3: a block's auctions precede its bids
        auction = _reference(h("auction"), auctions, _AUCTION_HOT_16, 16 - _AUCTION_HOT_16, NUM_IN_FLIGHT_AUCTIONS)
        bidder = _reference(h("bidder"), persons, _BIDDER_HOT_16, _BIDDER_RECENT_16, NUM_ACTIVE_PEOPLE)
        hc = h("channel")
        channel = (hc % np.uint64(len(CHANNELS))).astype(np.int32)
        url = channel * _URLS_PER_CHANNEL + ((hc >> _S4) % np.uint64(_URLS_PER_CHANNEL)).astype(np.int32)
        arrays = [
            _int64(FIRST_AUCTION_ID + auction),
            _int64(FIRST_PERSON_ID + bidder),
            _int64(_price(h("price"))),
            _take(pools.channels, channel),
            _take(pools.urls, url),
            _timestamps(date_time),
            _pick(pools.extra[kind], h("extra")),
        ]
    return pa.RecordBatch.from_arrays(arrays, schema=_SCHEMAS[kind])


# ------------------------------------------------------------------------------------------------- datagen

_DATAGEN_SCHEMA: Final = pa.schema(
    [("id", pa.int64()), ("key", pa.int64()), ("date_time", _TS), ("payload", pa.string())]
)
_DATAGEN_FIXED: Final = 8 + 8 + 8 + 4  # id, key, date_time, payload offset


def datagen_schema(record_bytes: int) -> pa.Schema:
    """The schema of generic source rows: id, key, date_time, payload (the same for every record_bytes)."""
    if record_bytes < 0:
        raise ValueError(f"record_bytes must be non-negative, not {record_bytes}")
    return _DATAGEN_SCHEMA


def generate_datagen(
    ordinals: np.ndarray, config: NexmarkConfig, *, keys: int = 10_000, record_bytes: int = 100
) -> pa.RecordBatch:
    """Generic rows: id = ordinal, key uniform in 0..keys-1, date_time = base + floor(id * 1000 / rate), padding.

    The payload's mean length makes batch.nbytes / rows about `record_bytes` (28 bytes are fixed, so smaller
    targets give empty payloads). Like `generate`, every row is a pure function of (seed, ordinal).
    """
    if keys < 1:
        raise ValueError(f"keys must be at least 1, not {keys}")
    k = _as_ordinals(ordinals)
    seed = int(config.seed)
    datagen_schema(record_bytes)  # validates record_bytes
    pool = _padding_pool(max(0, int(record_bytes) - _DATAGEN_FIXED))
    key = (_hash(k, _salt(seed, "datagen", "key")) % np.uint64(keys)).astype(np.int64)
    arrays = [
        _int64(k),
        _int64(key),
        _timestamps(event_time_ms(config, k)),
        _pick(pool, _hash(k, _salt(seed, "datagen", "payload"))),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=_DATAGEN_SCHEMA)
