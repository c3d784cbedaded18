"""Key shares under Zipf skew: the plain-Python path (small key counts) and the numpy path (large ones)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtune_cli import capacity
from streamtune_cli.capacity import hottest_key_share, key_shares, max_key_share, min_key_share


def brute_force_shares(zipf_s: float, keys: int, p: int) -> list[float]:
    """The definition, written out with Python integers: Fibonacci hash of each key id (64-bit), top 31
    bits, modulo p; each key weighs rank^-s over the sum of all weights."""
    weights = [r ** (-zipf_s) for r in range(1, keys + 1)]
    total = sum(weights)
    shares = [0.0] * p
    for key in range(1, keys + 1):
        h = ((key * 0x9E3779B97F4A7C15) % 2**64) >> 33
        shares[h % p] += weights[key - 1] / total
    return shares


shapes = st.tuples(
    st.floats(min_value=0.0, max_value=2.5, allow_nan=False),
    st.integers(min_value=1, max_value=3000),
    st.integers(min_value=2, max_value=300),
)


@given(shapes)
def test_plain_and_numpy_paths_agree_with_the_definition(shape: tuple[float, int, int]) -> None:
    zipf_s, keys, p = shape
    plain = key_shares(zipf_s, keys, p)
    numpy_path = capacity._key_shares_numpy(zipf_s, keys, p)
    reference = brute_force_shares(zipf_s, keys, p)
    assert len(plain) == len(numpy_path) == p
    assert plain == pytest.approx(numpy_path, abs=1e-12)
    assert plain == pytest.approx(reference, abs=1e-12)
    assert math.fsum(plain) == pytest.approx(1.0, abs=1e-12)
    assert all(share >= 0.0 for share in plain)


@given(shapes)
def test_hottest_key_bounds_every_instance_holding_it(shape: tuple[float, int, int]) -> None:
    zipf_s, keys, p = shape
    hottest = hottest_key_share(zipf_s, keys)
    assert hottest == pytest.approx(1.0 / sum(r ** (-zipf_s) for r in range(1, keys + 1)), rel=1e-12)
    # Key 1's instance gets at least key 1's share, so the largest share does too.
    assert max_key_share(zipf_s, keys, p) >= hottest
    assert min_key_share(zipf_s, keys, p) <= 1.0 / p <= max_key_share(zipf_s, keys, p)


def test_large_key_counts_take_the_numpy_path_and_the_same_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = capacity._PLAIN_PYTHON_KEYS + 1
    calls: list[int] = []
    real = capacity._key_shares_numpy
    monkeypatch.setattr(capacity, "_key_shares_numpy", lambda s, k, p: calls.append(k) or real(s, k, p))
    shares = key_shares(0.9, keys, 7)
    assert calls == [keys]
    assert shares == pytest.approx(brute_force_shares(0.9, keys, 7), abs=1e-12)
    assert hottest_key_share(0.9, keys) == pytest.approx(1.0 / np.sum(np.arange(1, keys + 1) ** -0.9), rel=1e-12)


def test_uniform_keys_split_by_key_count() -> None:
    # zipf_s = 0: every key weighs the same, so an instance's share is its number of keys over all keys.
    keys, p = 1000, 7
    counts = [0] * p
    for key in range(1, keys + 1):
        counts[(((key * 0x9E3779B97F4A7C15) % 2**64) >> 33) % p] += 1
    assert key_shares(0.0, keys, p) == pytest.approx([c / keys for c in counts], abs=1e-12)
