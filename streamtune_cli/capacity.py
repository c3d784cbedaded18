"""Analytic capacity model shared by the sim executor, the oracle and fusion's cost model.

Per operator: Universal Scalability Law scaling, Zipf key skew on hash-partitioned inputs, and demand
propagated from the target source rate through selectivities. Formulas are documented in docs/executors.md.
"""

from __future__ import annotations

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


def _key_instance(keys: int, p: int) -> "np.ndarray":
    import numpy as np  # only skewed operators need it; keeps `fuse` and `validate` start-up light

    # Fibonacci hashing of key ids: deterministic, spreads consecutive ids, no dependency on PYTHONHASHSEED.
    ids = np.arange(1, keys + 1, dtype=np.uint64)
    hashed = (ids * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    return (hashed % np.uint64(p)).astype(np.int64)


def key_shares(zipf_s: float, keys: int, p: int) -> tuple[float, ...]:
    """Fraction of records each of p instances receives when keys ~ Zipf(zipf_s) are hashed to them."""
    if p <= 1:
        return (1.0,)
    import numpy as np

    ranks = np.arange(1, keys + 1, dtype=np.float64)
    weights = ranks ** (-zipf_s)
    weights /= weights.sum()
    return tuple(float(x) for x in np.bincount(_key_instance(keys, p), weights=weights, minlength=p))


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
