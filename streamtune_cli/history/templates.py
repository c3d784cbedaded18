"""Families of job DAG templates for synthetic histories: structurally distinct shapes, varied within a family.

Each family draws a JobSpec from a seeded numpy Generator. Within a family the shape varies a little (one
more or one fewer stage or branch, a kind swapped for a close one) and the cost hints vary a lot (per-record
cost, selectivity, key skew, USL scaling); across families the shapes differ in ways graph edit distance
sees (number of sources and sinks, joins, branch structure, stateful stages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from streamtune_cli.spec.models import JobSpec

__all__ = ["Family", "FAMILIES", "family_names", "draw_spec", "family_variants", "family_separation"]

# Typical per-record CPU cost by kind (µs); each operator draws around it (log-normal, sigma 0.4).
_BASE_COST_US = {
    "source": 2.0,
    "map": 3.0,
    "filter": 1.0,
    "project": 0.8,
    "flat_map": 4.0,
    "window_aggregate": 10.0,
    "aggregate": 5.0,
    "join": 12.0,
    "sink": 1.5,
}
# Discrete skew settings keep capacity.max_key_share's cache hot (it hashes every key for each setting).
_ZIPF_S = (0.4, 0.7, 1.0)
_KEYS = (1_000, 10_000)


class _Dag:
    """A small builder that draws cost hints per operator as operators are added."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.operators: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []

    def op(self, op_id: str, kind: str, **fields: Any) -> str:
        rng = self.rng
        op: dict[str, Any] = {"id": op_id, "kind": kind}
        op["cost_us"] = round(float(_BASE_COST_US[kind] * rng.lognormal(0.0, 0.4)), 3)
        if kind == "filter":
            op["selectivity"] = round(float(rng.uniform(0.1, 0.9)), 3)
        elif kind == "flat_map":
            op["selectivity"] = round(float(rng.uniform(1.5, 4.0)), 3)
        elif kind == "window_aggregate":
            op["selectivity"] = round(float(rng.uniform(0.01, 0.2)), 3)
            op["window"] = {"type": "tumble", "size_s": int(rng.choice([5, 10, 60]))}
        elif kind == "aggregate":
            op["selectivity"] = round(float(rng.uniform(0.05, 0.5)), 3)
        elif kind == "join":
            op["selectivity"] = round(float(rng.uniform(0.2, 1.5)), 3)
        if kind not in ("source", "sink") and rng.random() < 0.3:
            op["scaling"] = {"sigma": float(rng.choice([0.0, 0.03, 0.08])), "kappa": float(rng.choice([0.0, 0.0005, 0.002]))}
        op.update(fields)
        self.operators.append(op)
        return op_id

    def edge(self, src: str, dst: str, partitioning: str = "rebalance", key: str | None = None) -> None:
        edge: dict[str, Any] = {"from": src, "to": dst, "partitioning": partitioning}
        if partitioning == "hash":
            edge["key"] = [key or "key"]
            target = next(o for o in self.operators if o["id"] == dst)
            # Keyed operators may see skewed keys; the capacity model applies skew only behind hash edges.
            if "key_skew" not in target and self.rng.random() < 0.5:
                target["key_skew"] = {"zipf_s": float(self.rng.choice(_ZIPF_S)), "keys": int(self.rng.choice(_KEYS))}
        self.edges.append(edge)

    def spec(self, name: str, description: str, rate_rps: float = 100_000.0) -> JobSpec:
        return JobSpec.model_validate(
            {
                "name": name,
                "description": description,
                "workload": {"rate_rps": rate_rps},
                "operators": self.operators,
                "edges": self.edges,
            }
        )


def _chain(d: _Dag) -> str:
    """source -> 4..5 stateless stages -> sink, one line."""
    rng = d.rng
    stages = ["filter", "map", "project", "map", "filter"][: int(rng.integers(4, 6))]
    swap = int(rng.choice([0, 1, len(stages) - 1]))
    if swap:
        stages[swap] = "flat_map"
    prev = d.op("src", "source")
    for i, kind in enumerate(stages):
        cur = d.op(f"s{i}_{kind}", kind)
        d.edge(prev, cur, "forward" if i == 0 else "rebalance")
        prev = cur
    d.edge(prev, d.op("sink", "sink"))
    return f"len{len(stages)}" + (f"+flat_map@{swap}" if swap else "")


def _diamond(d: _Dag) -> str:
    """source -> split -> 2..3 parallel branches -> union -> keyed window -> sink."""
    rng = d.rng
    branches = int(rng.integers(2, 4))
    first = "filter" if rng.random() < 0.6 else "project"
    d.op("src", "source")
    d.op("split", "map")
    d.edge("src", "split", "forward")
    d.op("union", "map")
    for b in range(branches):
        kind = [first, "flat_map", "map"][b]
        cur = d.op(f"branch{b}_{kind}", kind)
        d.edge("split", cur)
        d.edge(cur, "union")
    d.op("window", "window_aggregate")
    d.edge("union", "window", "hash")
    d.edge("window", d.op("sink", "sink"))
    return f"branches{branches}+{first}"


def _join(d: _Dag) -> str:
    """two sources, each filtered or projected, hash-joined, aggregated by key, one sink."""
    rng = d.rng
    left_kind = "filter" if rng.random() < 0.6 else "project"
    for side, kind in (("left", left_kind), ("right", "filter")):
        d.op(f"{side}_src", "source", rate_share=round(float(rng.uniform(0.2, 0.8)), 3))
        d.op(f"{side}_prep", kind)
        d.edge(f"{side}_src", f"{side}_prep", "forward")
    d.op("join", "join")
    d.edge("left_prep", "join", "hash", "id")
    d.edge("right_prep", "join", "hash", "id")
    tail = "join"
    extra = rng.random() < 0.5
    if extra:
        d.op("enrich", "map")
        d.edge("join", "enrich")
        tail = "enrich"
    d.op("aggregate", "aggregate")
    d.edge(tail, "aggregate", "hash", "category")
    d.edge("aggregate", d.op("sink", "sink"))
    return f"{left_kind}" + ("+enrich" if extra else "")


def _fanout(d: _Dag) -> str:
    """source -> parse -> 3..4 independent branches, each with its own sink."""
    rng = d.rng
    branches = int(rng.integers(3, 5))
    second = "project" if rng.random() < 0.6 else "filter"
    d.op("src", "source")
    d.op("parse", "map")
    d.edge("src", "parse", "forward")
    for b in range(branches):
        kind = ["filter", second, "filter", "map"][b]
        cur = d.op(f"out{b}_{kind}", kind)
        d.edge("parse", cur)
        d.edge(cur, d.op(f"out{b}_sink", "sink"), "forward")
    return f"branches{branches}+{second}"


def _nexmark(d: _Dag) -> str:
    """Nexmark-style: one event source split by type; persons x auctions joined, bids windowed; two sinks."""
    rng = d.rng
    d.op("events", "source", generator="nexmark", events=["person", "auction", "bid"])
    for ev in ("person", "auction", "bid"):
        d.op(f"{ev}s", "filter", selectivity={"person": 0.02, "auction": 0.06, "bid": 0.92}[ev])
        d.edge("events", f"{ev}s", "forward")
    for ev in ("person", "auction"):
        d.op(f"{ev}_cols", "project")
        d.edge(f"{ev}s", f"{ev}_cols", "forward")
    d.op("new_users", "join")
    d.edge("person_cols", "new_users", "hash", "id")
    d.edge("auction_cols", "new_users", "hash", "seller")
    d.edge("new_users", d.op("users_sink", "sink"))
    bids = "bids"
    projected = rng.random() < 0.5
    if projected:
        d.op("bid_cols", "project")
        d.edge("bids", "bid_cols", "forward")
        bids = "bid_cols"
    d.op("hot_items", "window_aggregate")
    d.edge(bids, "hot_items", "hash", "auction")
    tail = "hot_items"
    top = rng.random() < 0.5
    if top:
        d.op("max_count", "aggregate")
        d.edge("hot_items", "max_count", "hash", "window_end")
        tail = "max_count"
    d.edge(tail, d.op("bids_sink", "sink"))
    return ("q3+q5" if top else "q3+count") + ("+bid_cols" if projected else "")


def _star_join(d: _Dag) -> str:
    """a fact stream enriched by two low-rate dimension streams broadcast into two joins, then windowed."""
    rng = d.rng
    fact_kind = "map" if rng.random() < 0.6 else "filter"
    d.op("fact_src", "source", rate_share=0.9)
    d.op("fact_prep", fact_kind)
    d.edge("fact_src", "fact_prep", "forward")
    prev = "fact_prep"
    for dim in ("a", "b"):
        # Every join instance receives the whole broadcast side, so dimension streams must stay small
        # next to one instance's capacity, or adding instances would not help.
        d.op(f"dim_{dim}_src", "source", rate_share=0.005)
        d.op(f"dim_{dim}_filter", "filter")
        d.edge(f"dim_{dim}_src", f"dim_{dim}_filter", "forward")
        d.op(f"join_{dim}", "join")
        d.edge(prev, f"join_{dim}")
        d.edge(f"dim_{dim}_filter", f"join_{dim}", "broadcast")
        prev = f"join_{dim}"
    windowed = rng.random() < 0.5
    if windowed:
        d.op("window", "window_aggregate")
        d.edge(prev, "window", "hash", "k")
        prev = "window"
    d.edge(prev, d.op("sink", "sink"))
    return f"{fact_kind}" + ("+window" if windowed else "")


def _fan_in(d: _Dag) -> str:
    """4..5 sources, each projected, unioned, aggregated by key into one sink."""
    rng = d.rng
    sources = int(rng.integers(4, 6))
    agg_kind = "aggregate" if rng.random() < 0.6 else "window_aggregate"
    d.op("union", "map")
    for s in range(sources):
        d.op(f"in{s}_src", "source")
        d.op(f"in{s}_project", "project")
        d.edge(f"in{s}_src", f"in{s}_project", "forward")
        d.edge(f"in{s}_project", "union")
    d.op("aggregate", agg_kind)
    d.edge("union", "aggregate", "hash", "key")
    d.edge("aggregate", d.op("sink", "sink"))
    return f"sources{sources}+{agg_kind}"


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    build: Callable[[_Dag], str]


FAMILIES: tuple[Family, ...] = tuple(
    Family(name, (build.__doc__ or "").strip(), build)
    for name, build in (
        ("chain", _chain),
        ("diamond", _diamond),
        ("join", _join),
        ("fanout", _fanout),
        ("nexmark", _nexmark),
        ("star_join", _star_join),
        ("fan_in", _fan_in),
    )
)


def family_names() -> list[str]:
    return [f.name for f in FAMILIES]


def draw_spec(family: str | Family, rng: np.random.Generator, *, name: str | None = None, rate_rps: float = 100_000.0) -> tuple[JobSpec, str]:
    """A spec of `family` drawn with `rng`, and the name of its structural variant."""
    fam = family if isinstance(family, Family) else next((f for f in FAMILIES if f.name == family), None)
    if fam is None:
        raise KeyError(f"unknown template family {family!r} (known: {', '.join(family_names())})")
    dag = _Dag(rng)
    variant = fam.build(dag)
    return dag.spec(name or fam.name, fam.description, rate_rps), variant


def family_variants(n_draws: int = 40, seed: int = 7) -> dict[str, list[Any]]:
    """The distinct labeled DAGs (streamtune_cli.ged.dedupe) among `n_draws` draws of each family."""
    from streamtune_cli.ged import dedupe
    from streamtune_cli.spec.graph import JobGraph

    found = {}
    for family in FAMILIES:
        graphs = [JobGraph(draw_spec(family, np.random.default_rng([seed, i]))[0]).labeled() for i in range(n_draws)]
        found[family.name], _ = dedupe(graphs)
    return found


def family_separation(n_draws: int = 40, seed: int = 7) -> dict[str, dict[str, Any]]:
    """Per family: distinct DAGs, their sizes, the diameter (largest GED upper bound between two of its
    DAGs) and the gap (smallest GED lower bound to a DAG of another family). Clustering can recover the
    families when every gap exceeds the diameters on both sides."""
    import itertools

    from streamtune_cli.ged import graph_edit_distance

    variants = family_variants(n_draws, seed)
    table: dict[str, dict[str, Any]] = {}
    for name, graphs in variants.items():
        pairs = list(itertools.combinations(graphs, 2))
        others = [g for other, gs in variants.items() if other != name for g in gs]
        table[name] = {
            "dags": len(graphs),
            "operators": sorted({g.number_of_nodes() for g in graphs}),
            "diameter": max((graph_edit_distance(a, b).upper for a, b in pairs), default=0.0),
            "gap": min(graph_edit_distance(a, b).lower for a in graphs for b in others),
        }
    return table
