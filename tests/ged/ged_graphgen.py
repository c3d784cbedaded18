"""Graph builders, a brute-force GED oracle and hypothesis strategies shared
by the GED tests."""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable, Sequence

import networkx as nx
from hypothesis import strategies as st

from streamtune_cli.ged import EditCosts

KINDS = ["source", "map", "filter", "join", "sink"]
PARTS = ["forward", "hash", "rebalance"]


def make_dag(kinds: Sequence[str | None], edges: Sequence[tuple[int, int, str | None]], ids: Sequence[Hashable] | None = None) -> nx.DiGraph:
    """Build a DiGraph; a None kind/partitioning leaves the attribute out."""
    ids = list(range(len(kinds))) if ids is None else list(ids)
    g = nx.DiGraph()
    for node, kind in zip(ids, kinds):
        if kind is None:
            g.add_node(node)
        else:
            g.add_node(node, kind=kind)
    for i, j, part in edges:
        if part is None:
            g.add_edge(ids[i], ids[j])
        else:
            g.add_edge(ids[i], ids[j], partitioning=part)
    return g


def relabel_randomly(g: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
    """Same graph with fresh, shuffled node ids (and shuffled insertion order)."""
    nodes = list(g.nodes)
    new_ids = [f"n{k}" for k in range(len(nodes))]
    rng.shuffle(new_ids)
    mapping = dict(zip(nodes, new_ids))
    h = nx.DiGraph()
    order = nodes[:]
    rng.shuffle(order)
    for n in order:
        h.add_node(mapping[n], **g.nodes[n])
    edges = list(g.edges(data=True))
    rng.shuffle(edges)
    for u, v, d in edges:
        h.add_edge(mapping[u], mapping[v], **d)
    return h


def brute_force_ged(g1: nx.DiGraph, g2: nx.DiGraph, c: EditCosts) -> float:
    """GED by enumerating every partial injective node map (tiny graphs only).

    Written independently of the solver as an oracle: node costs per the map,
    then each g1 edge is substituted if its image edge exists (else deleted)
    and every g2 edge not hit is inserted.
    """
    n1, n2 = list(g1.nodes), list(g2.nodes)
    kind1 = {n: g1.nodes[n].get("kind") for n in n1}
    kind2 = {n: g2.nodes[n].get("kind") for n in n2}
    best = float("inf")
    for k in range(min(len(n1), len(n2)) + 1):
        for src in itertools.combinations(n1, k):
            for dst in itertools.permutations(n2, k):
                f = dict(zip(src, dst))
                cost = sum((0.0 if kind1[u] == kind2[f[u]] else c.node_sub) if u in f else c.node_del for u in n1)
                cost += c.node_ins * (len(n2) - k)
                hit = 0
                for u, v, d in g1.edges(data=True):
                    if u in f and v in f and g2.has_edge(f[u], f[v]):
                        hit += 1
                        same = d.get("partitioning") == g2.edges[f[u], f[v]].get("partitioning")
                        cost += 0.0 if same else min(c.edge_sub, c.edge_del + c.edge_ins)
                    else:
                        cost += c.edge_del
                cost += c.edge_ins * (g2.number_of_edges() - hit)
                best = min(best, cost)
    return best


@st.composite
def labeled_dags(draw: st.DrawFn, min_nodes: int = 1, max_nodes: int = 7, rare_max: int | None = 8) -> nx.DiGraph:
    """Random labeled DAG: edges only i -> j with i < j (in a random id order).

    Sizes are mostly min_nodes..max_nodes; `rare_max` nodes are drawn about
    one time in ten (networkx's GED gets slow at 8 nodes).
    """
    if rare_max is not None and draw(st.integers(0, 9)) == 9:
        n = rare_max
    else:
        n = draw(st.integers(min_nodes, max_nodes))
    kinds = draw(st.lists(st.sampled_from(KINDS + [None]), min_size=n, max_size=n))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    # about a third of the possible forward edges; the "no edge" value is the
    # small one so shrinking removes edges
    mask = draw(st.lists(st.integers(0, 2), min_size=len(pairs), max_size=len(pairs)))
    chosen = [pair for pair, m in zip(pairs, mask) if m == 2]
    edges = [(i, j, draw(st.sampled_from(PARTS + [None]))) for i, j in chosen]
    ids = draw(st.permutations(list(range(n))))
    return make_dag(kinds, edges, ids=[f"v{x}" for x in ids])


@st.composite
def dag_pairs(draw: st.DrawFn, max_nodes: int = 7, rare_max: int = 8) -> tuple[nx.DiGraph, nx.DiGraph]:
    """Two random DAGs of which at most one has `rare_max` nodes (networkx
    needs up to tens of seconds for an 8-node vs 8-node pair)."""
    g1 = draw(labeled_dags(max_nodes=max_nodes, rare_max=rare_max))
    g2 = draw(labeled_dags(max_nodes=max_nodes, rare_max=None if g1.number_of_nodes() > max_nodes else rare_max))
    return g1, g2


def _costs(ns: float, nd: float, ni: float, es: float, ed: float, ei: float) -> EditCosts:
    return EditCosts(node_sub=ns, node_del=nd, node_ins=ni, edge_sub=es, edge_del=ed, edge_ins=ei)


# networkx's search is only exact while node_sub < node_del + node_ins (its
# branching never tries delete+insert against an assignment that prefers it),
# so cost sets compared with networkx stay in that regime.
NX_SAFE_COSTS = [
    _costs(1, 1, 1, 1, 1, 1),
    _costs(1.5, 1, 1, 0.5, 2, 1),
    _costs(2, 1.5, 1, 3, 1, 1),
    _costs(0.5, 2, 3, 1, 0.5, 0.5),
    _costs(1, 3, 1, 2, 1, 2),
]

# any non-negative costs, including zeros and sub >= del + ins (brute force only)
ANY_COSTS = NX_SAFE_COSTS + [
    _costs(3, 1, 1, 1, 1, 1),
    _costs(2, 1, 1, 5, 1, 1),
    _costs(0, 1, 1, 1, 1, 1),
    _costs(1, 0, 2, 1, 1, 0),
    _costs(2, 0.7, 1, 0.25, 2, 0.5),
]


# ------------------------------------------------------------ job families
# Three shapes that are far apart in GED while members of one family differ
# by a few edits: the clustering tests must recover them.
def chain_job(rng: random.Random) -> nx.DiGraph:
    """source -> 6..8 maps (one may be a filter) -> sink, forward edges: 8-10 nodes."""
    n_mid = rng.randint(6, 8)
    mids = ["map"] * n_mid
    if rng.random() < 0.5:
        mids[rng.randrange(n_mid)] = "filter"
    kinds = ["source", *mids, "sink"]
    edges = [(i, i + 1, "forward") for i in range(len(kinds) - 1)]
    return relabel_randomly(make_dag(kinds, edges), rng)


def fanout_job(rng: random.Random) -> nx.DiGraph:
    """diamond / fan-out: a source broadcast to 3..5 window aggregates that
    are hash-merged into one aggregate before the sink."""
    width = rng.randint(3, 5)
    kinds = ["source"] + ["window_aggregate"] * width + ["aggregate", "sink"]
    agg, sink = width + 1, width + 2
    edges = [(0, b, "broadcast") for b in range(1, width + 1)] + [(b, agg, "hash") for b in range(1, width + 1)]
    edges.append((agg, sink, rng.choice(["forward", "rebalance"])))
    return relabel_randomly(make_dag(kinds, edges), rng)


def join_job(rng: random.Random) -> nx.DiGraph:
    """two sources, each through 1..2 filters, hash-joined, then 1..2
    flat_maps and a sink."""
    kinds: list[str | None] = []
    edges: list[tuple[int, int, str | None]] = []
    tails = []
    for _ in range(2):
        kinds.append("source")
        prev = len(kinds) - 1
        for _ in range(rng.randint(1, 2)):
            kinds.append("filter")
            edges.append((prev, len(kinds) - 1, "forward"))
            prev = len(kinds) - 1
        tails.append(prev)
    kinds.append("join")
    join = len(kinds) - 1
    edges += [(t, join, "hash") for t in tails]
    prev = join
    for _ in range(rng.randint(1, 2)):
        kinds.append("flat_map")
        edges.append((prev, len(kinds) - 1, "rebalance"))
        prev = len(kinds) - 1
    kinds.append("sink")
    edges.append((prev, len(kinds) - 1, "forward"))
    return relabel_randomly(make_dag(kinds, edges), rng)


FAMILIES = [chain_job, fanout_job, join_job]
