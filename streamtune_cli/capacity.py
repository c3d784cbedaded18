"""Analytic capacity model shared by the sim executor, the oracle and fusion's cost model.

Per operator: Universal Scalability Law scaling, Zipf key skew on hash-partitioned inputs, and demand
propagated from the target source rate through selectivities. Formulas are documented in docs/executors.md.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import Operator, OperatorKind, Partitioning

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_SCALING",
    "usl_params",
    "usl_rate",
    "key_shares",
    "hottest_key_share",
    "max_key_share",
    "min_key_share",
    "is_skewed",
    "capacity_rps",
    "demand_rps",
    "broadcast_factor",
    "peak_parallelism",
]

# (sigma, kappa) by kind when the spec gives none. Stateless operators scale almost linearly; keyed
# state (windows, aggregates, joins) pays for contention on state backends and coordination on timers.
DEFAULT_SCALING: dict[OperatorKind, tuple[float, float]] = {
    OperatorKind.source: (0.01, 0.0),
    OperatorKind.map: (0.01, 0.0),
    OperatorKind.filter: (0.01, 0.0),
    OperatorKind.project: (0.01, 0.0),
    OperatorKind.flat_map: (0.02, 0.0),
    OperatorKind.window_aggregate: (0.04, 0.0002),
    OperatorKind.aggregate: (0.04, 0.0002),
    OperatorKind.join: (0.06, 0.0005),
    OperatorKind.sink: (0.02, 0.0),
}


def usl_params(op: Operator) -> tuple[float, float]:
    sigma, kappa = DEFAULT_SCALING[op.kind]
    if op.scaling is not None:
        sigma = op.scaling.sigma if op.scaling.sigma is not None else sigma
        kappa = op.scaling.kappa if op.scaling.kappa is not None else kappa
    return sigma, kappa


def usl_rate(op: Operator, p: int) -> float:
    """USL throughput of p instances: r * p / (1 + sigma (p-1) + kappa p (p-1)), r = 1e6 / cost_us."""
    sigma, kappa = usl_params(op)
    per_instance = 1e6 / op.cost_us
    return per_instance * p / (1.0 + sigma * (p - 1) + kappa * p * (p - 1))


# Up to this many keys the shares are computed in plain Python (no numpy import, so `fuse` on a skewed job
# starts light; ~1 ms a call at 20,000 keys once the key hashes are cached); above it, with numpy. The path
# depends on the key count alone, so a given (zipf_s, keys, p) always gives the same floats.
_PLAIN_PYTHON_KEYS = 50_000
_FIB_MULTIPLIER = 0x9E3779B97F4A7C15
_U64 = (1 << 64) - 1


@lru_cache(maxsize=8)
def _key_hashes(keys: int) -> tuple[int, ...]:
    """Fibonacci hashing of key ids 1..keys (64-bit wrap-around, then the top 31 bits): deterministic,
    spreads consecutive ids, no dependency on PYTHONHASHSEED. Key i goes to instance hash % p."""
    return tuple(((i * _FIB_MULTIPLIER) & _U64) >> 33 for i in range(1, keys + 1))


@lru_cache(maxsize=8)
def _zipf_weights(zipf_s: float, keys: int) -> tuple[float, ...]:
    """Zipf(zipf_s) probabilities of ranks 1..keys."""
    raw = [float(rank) ** (-zipf_s) for rank in range(1, keys + 1)]
    total = math.fsum(raw)
    return tuple(w / total for w in raw)


def _zipf_weights_numpy(zipf_s: float, keys: int) -> "np.ndarray":
    """`_zipf_weights` with numpy, for more than _PLAIN_PYTHON_KEYS keys."""
    import numpy as np

    weights = np.arange(1, keys + 1, dtype=np.float64) ** (-zipf_s)
    weights /= weights.sum()
    return weights


def _key_shares_numpy(zipf_s: float, keys: int, p: int) -> tuple[float, ...]:
    import numpy as np

    ids = np.arange(1, keys + 1, dtype=np.uint64)
    instance = (((ids * np.uint64(_FIB_MULTIPLIER)) >> np.uint64(33)) % np.uint64(p)).astype(np.int64)
    return tuple(float(x) for x in np.bincount(instance, weights=_zipf_weights_numpy(zipf_s, keys), minlength=p))


def hottest_key_share(zipf_s: float, keys: int) -> float:
    """Share of the most frequent key (rank 1), normalised as `key_shares` normalises it: whichever
    instance holds that key receives at least this share."""
    if keys > _PLAIN_PYTHON_KEYS:
        return float(_zipf_weights_numpy(zipf_s, keys)[0])
    return _zipf_weights(zipf_s, keys)[0]


def key_shares(zipf_s: float, keys: int, p: int) -> tuple[float, ...]:
    """Fraction of records each of p instances receives when keys ~ Zipf(zipf_s) are hashed to them."""
    if p <= 1:
        return (1.0,)
    if keys > _PLAIN_PYTHON_KEYS:
        return _key_shares_numpy(zipf_s, keys, p)
    shares = [0.0] * p
    for h, w in zip(_key_hashes(keys), _zipf_weights(zipf_s, keys)):
        shares[h % p] += w
    return tuple(shares)


@lru_cache(maxsize=4096)
def _share_extremes(zipf_s: float, keys: int, p: int) -> tuple[float, float]:
    # Cached as two floats per entry: caching all p shares could take gigabytes at p near 32768.
    shares = key_shares(zipf_s, keys, p)
    return max(shares), min(shares)


def max_key_share(zipf_s: float, keys: int, p: int) -> float:
    """Largest share any instance gets; never below the even split 1/p (hashing only makes it hotter)."""
    return max(_share_extremes(zipf_s, keys, p)[0], 1.0 / p)


def min_key_share(zipf_s: float, keys: int, p: int) -> float:
    """Smallest share any instance gets (0 when some instance receives no key); never above 1/p."""
    return min(_share_extremes(zipf_s, keys, p)[1], 1.0 / p)


def is_skewed(graph: JobGraph, op_id: str) -> bool:
    """Skew applies when the operator declares a key distribution and receives a hash-partitioned input."""
    op = graph.operator(op_id)
    return op.key_skew is not None and any(e.partitioning == Partitioning.hash for e in graph.in_edges(op_id))


def capacity_rps(graph: JobGraph, op_id: str, p: int) -> float:
    """Records/s the operator sustains at parallelism p: usl(p), limited by the hottest instance under skew."""
    op = graph.operator(op_id)
    usl = usl_rate(op, p)
    if not is_skewed(graph, op_id):
        return usl
    skew = op.key_skew
    assert skew is not None
    return (usl / p) / max_key_share(skew.zipf_s, skew.keys, p)


def broadcast_factor(graph: JobGraph, op_id: str, parallelism: dict[str, int], upstream: str) -> int:
    """A broadcast edge delivers every record to each of the downstream instances."""
    edge = graph.edge(upstream, op_id)
    return parallelism[op_id] if edge.partitioning == Partitioning.broadcast else 1


def demand_rps(
    graph: JobGraph, source_rates: dict[str, float], parallelism: dict[str, int] | None = None
) -> dict[str, float]:
    """Records/s each operator must process for the sources to run at `source_rates` (no throttling)."""
    parallelism = parallelism or {op.id: op.parallelism for op in graph.spec.operators}
    demand: dict[str, float] = {}
    for op_id in graph.topological_order:
        op = graph.operator(op_id)
        if op.kind == OperatorKind.source:
            demand[op_id] = source_rates[op_id]
            continue
        demand[op_id] = sum(
            demand[u] * graph.operator(u).selectivity * broadcast_factor(graph, op_id, parallelism, u)
            for u in graph.upstream(op_id)
        )
    return demand


def peak_parallelism(graph: JobGraph, op_id: str, max_parallelism: int) -> int:
    """The parallelism <= max_parallelism with the highest capacity (USL capacity peaks, then falls)."""
    best_p, best = 1, -1.0
    for p in range(1, max_parallelism + 1):
        cap = capacity_rps(graph, op_id, p)
        if cap > best:
            best_p, best = p, cap
    return best_p
