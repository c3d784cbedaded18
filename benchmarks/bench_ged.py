"""Benchmark the GED toolkit: exact_ged against networkx.graph_edit_distance on
random 10-12 node job DAG pairs, and distance matrix + clustering at scale.

    .venv/bin/python benchmarks/bench_ged.py --pairs 20 --nodes 10-12 --seed 0
    .venv/bin/python benchmarks/bench_ged.py --pairs 5 --pair-mode independent --nx-timeout 60
    .venv/bin/python benchmarks/bench_ged.py --cluster-runs 10000 --seed 0

Pair mode: every pair is timed with networkx (exact, same costs, per-pair
`timeout=`) and with exact_ged (median of --repeat runs); values must be
identical wherever networkx finished (exit code 1 otherwise).  Speed-ups are
reported over the pairs networkx finished; a timed-out pair only gives a
lower bound on its speed-up (timeout / our time).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import networkx as nx

from streamtune_cli.ged import (
    DEFAULT_PAIR_MAX_EXPANSIONS,
    EditCosts,
    cluster_distance_matrix,
    dedupe,
    distance_matrix,
    exact_ged,
    networkx_cost_kwargs,
)

KINDS = ["source", "map", "filter", "project", "flat_map", "window_aggregate", "aggregate", "join", "sink"]
PARTS = ["forward", "hash", "rebalance", "broadcast"]


# ------------------------------------------------------------------ pairs
def random_job_dag(rng: random.Random, n: int, extra_edge_p: float = 0.12) -> nx.DiGraph:
    """Connected random DAG: every node j > 0 gets one parent < j, plus extra
    forward edges i -> j (j > i + 1) with probability `extra_edge_p`."""
    g = nx.DiGraph()
    for i in range(n):
        g.add_node(i, kind=rng.choice(KINDS))
    for j in range(1, n):
        g.add_edge(rng.randrange(j), j, partitioning=rng.choice(PARTS))
    for i in range(n):
        for j in range(i + 2, n):
            if rng.random() < extra_edge_p:
                g.add_edge(i, j, partitioning=rng.choice(PARTS))
    return g


def shuffle_ids(g: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
    ids = list(range(g.number_of_nodes()))
    rng.shuffle(ids)
    return nx.relabel_nodes(g, dict(zip(list(g.nodes), ids)))


def perturb(g: nx.DiGraph, rng: random.Random, n_edits: int, lo: int, hi: int) -> nx.DiGraph:
    """Apply `n_edits` random edit operations keeping a DAG of lo..hi nodes."""
    h = g.copy()
    done = 0
    while done < n_edits:
        op = rng.choice(["kind", "partitioning", "del_edge", "add_edge", "del_node", "add_node"])
        order = list(nx.topological_sort(h))
        if op == "kind":
            h.nodes[rng.choice(order)]["kind"] = rng.choice(KINDS)
        elif op == "partitioning" and h.number_of_edges():
            h.edges[rng.choice(list(h.edges))]["partitioning"] = rng.choice(PARTS)
        elif op == "del_edge" and h.number_of_edges():
            h.remove_edge(*rng.choice(list(h.edges)))
        elif op == "add_edge":
            i, j = sorted(rng.sample(range(len(order)), 2))
            if h.has_edge(order[i], order[j]):
                continue
            h.add_edge(order[i], order[j], partitioning=rng.choice(PARTS))
        elif op == "del_node" and h.number_of_nodes() > lo:
            h.remove_node(rng.choice(order))
        elif op == "add_node" and h.number_of_nodes() < hi:
            new = max(h.nodes) + 1
            h.add_node(new, kind=rng.choice(KINDS))
            h.add_edge(rng.choice(order), new, partitioning=rng.choice(PARTS))
        else:
            continue
        done += 1
    return h


def make_pairs(n_pairs: int, lo: int, hi: int, mode: str, edits: tuple[int, int], seed: int) -> list[tuple[nx.DiGraph, nx.DiGraph, int | None]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n_pairs):
        g1 = random_job_dag(rng, rng.randint(lo, hi))
        if mode == "independent":
            g2, k = random_job_dag(rng, rng.randint(lo, hi)), None
        else:
            k = rng.randint(*edits)
            g2 = perturb(g1, rng, k, lo, hi)
        pairs.append((g1, shuffle_ids(g2, rng), k))
    return pairs


def run_pairs(args: argparse.Namespace) -> int:
    lo, hi = (int(x) for x in args.nodes.split("-"))
    edits = tuple(int(x) for x in args.edits.split("-"))
    costs = EditCosts()
    kwargs = networkx_cost_kwargs(costs)
    pairs = make_pairs(args.pairs, lo, hi, args.pair_mode, edits, args.seed)  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = []
    print(f"# {len(pairs)} pairs, {lo}-{hi} nodes, mode={args.pair_mode}" + (f" edits={args.edits}" if args.pair_mode == "related" else "") + f", seed={args.seed}, networkx timeout={args.nx_timeout}s, unit costs")
    header = f"{'pair':>4} {'n1/m1':>6} {'n2/m2':>6} {'edits':>5} {'ours':>5} {'nx':>5} {'status':>8} {'ours ms':>8} {'nx s':>8} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    mismatches = 0
    for idx, (g1, g2, k) in enumerate(pairs):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ours = exact_ged(g1, g2, costs)
            times.append(time.perf_counter() - t0)
        t_ours = statistics.median(times)
        t0 = time.perf_counter()
        ref = nx.graph_edit_distance(g1, g2, **kwargs, timeout=args.nx_timeout)
        t_nx = time.perf_counter() - t0
        finished = t_nx < args.nx_timeout
        status = "ok" if finished else "timeout"
        if finished and (not ours.exact or abs(ours.value - ref) > 1e-9):
            status = "MISMATCH"
            mismatches += 1
        elif not finished and ours.value > ref + 1e-9:
            status = "WORSE"  # our optimum can never exceed a path networkx found
            mismatches += 1
        speedup = t_nx / t_ours
        rows.append({
            "pair": idx, "n1": g1.number_of_nodes(), "m1": g1.number_of_edges(), "n2": g2.number_of_nodes(),
            "m2": g2.number_of_edges(), "edits": k, "ours": ours.value, "exact": ours.exact, "networkx": ref,
            "finished": finished, "status": status, "ours_s": t_ours, "networkx_s": t_nx, "speedup": speedup,
        })
        mark = ">=" if not finished else ""
        print(
            f"{idx:>4} {g1.number_of_nodes():>3}/{g1.number_of_edges():<2} {g2.number_of_nodes():>3}/{g2.number_of_edges():<2} "
            f"{k if k is not None else '-':>5} {ours.value:>5g} {ref:>5g} {status:>8} {t_ours * 1e3:>8.2f} {t_nx:>8.2f} {mark + format(speedup, '.0f'):>9}",
            flush=True,
        )
    done = [r for r in rows if r["finished"]]
    print()
    print(f"networkx finished {len(done)}/{len(rows)} pairs, timed out on {len(rows) - len(done)}; value mismatches: {mismatches}")
    if done:
        sp = [r["speedup"] for r in done]
        print(f"speed-up on finished pairs: median {statistics.median(sp):.0f}x, min {min(sp):.0f}x, max {max(sp):.0f}x")
    allsp = [r["speedup"] for r in rows]
    print(f"speed-up over all pairs, timeouts counted at the timeout (a lower bound): median >= {statistics.median(allsp):.0f}x")
    ours_ms = [r["ours_s"] * 1e3 for r in rows]
    print(f"exact_ged time: median {statistics.median(ours_ms):.2f} ms, max {max(ours_ms):.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "pairs": rows}, indent=1))
    return 1 if mismatches else 0


# -------------------------------------------------------------- clustering
# Six job shapes; each template varies a little (lengths, optional operators,
# a partitioning choice) so members of a family are a few edits apart while
# the families differ in shape and operator kinds.
def _path(kinds: list[str], parts: list[str]) -> nx.DiGraph:
    g = nx.DiGraph()
    for i, k in enumerate(kinds):
        g.add_node(i, kind=k)
    for i, p in enumerate(parts):
        g.add_edge(i, i + 1, partitioning=p)
    return g


def _etl_chain(rng: random.Random) -> nx.DiGraph:
    """long stateless pipeline: source, 6..8 maps (maybe one filter), sink."""
    mids = ["map"] * rng.randint(6, 8)
    if rng.random() < 0.5:
        mids[rng.randrange(len(mids))] = "filter"
    kinds = ["source", *mids, "sink"]
    return _path(kinds, ["forward"] * (len(kinds) - 1))


def _windowed(rng: random.Random) -> nx.DiGraph:
    """short keyed window: source, [filter], window_aggregate, [project], sink."""
    kinds = ["source"] + (["filter"] if rng.random() < 0.5 else []) + ["window_aggregate"] + (["project"] if rng.random() < 0.5 else []) + ["sink"]
    parts = ["hash" if kinds[i + 1] == "window_aggregate" else "forward" for i in range(len(kinds) - 1)]
    return _path(kinds, parts)


def _union_agg(rng: random.Random) -> nx.DiGraph:
    """2..3 sources, each flat_mapped, rebalanced into one aggregate, then a sink."""
    g = nx.DiGraph()
    g.add_node("agg", kind="aggregate")
    g.add_node("out", kind="sink")
    g.add_edge("agg", "out", partitioning=rng.choice(["forward", "rebalance"]))
    for s in range(rng.randint(2, 3)):
        g.add_node(f"s{s}", kind="source")
        g.add_node(f"m{s}", kind="flat_map")
        g.add_edge(f"s{s}", f"m{s}", partitioning="forward")
        g.add_edge(f"m{s}", "agg", partitioning="hash")
    return g


def _two_way_join(rng: random.Random) -> nx.DiGraph:
    """two sources through 1..2 filters each, hash join, 1..2 maps, sink."""
    g = nx.DiGraph()
    tails = []
    for s in range(2):
        g.add_node(f"s{s}", kind="source")
        prev = f"s{s}"
        for t in range(rng.randint(1, 2)):
            g.add_node(f"f{s}{t}", kind="filter")
            g.add_edge(prev, f"f{s}{t}", partitioning="forward")
            prev = f"f{s}{t}"
        tails.append(prev)
    g.add_node("j", kind="join")
    for t in tails:
        g.add_edge(t, "j", partitioning="hash")
    prev = "j"
    for t in range(rng.randint(1, 2)):
        g.add_node(f"p{t}", kind="map")
        g.add_edge(prev, f"p{t}", partitioning="forward")
        prev = f"p{t}"
    g.add_node("out", kind="sink")
    g.add_edge(prev, "out", partitioning="forward")
    return g


def _broadcast_fanout(rng: random.Random) -> nx.DiGraph:
    """source broadcast to 3..5 window aggregates merged by a map before the sink."""
    g = nx.DiGraph()
    g.add_node("src", kind="source")
    g.add_node("u", kind="map")
    g.add_node("out", kind="sink")
    for b in range(rng.randint(3, 5)):
        g.add_node(b, kind="window_aggregate")
        g.add_edge("src", b, partitioning="broadcast")
        g.add_edge(b, "u", partitioning="rebalance")
    g.add_edge("u", "out", partitioning="forward")
    return g


def _star_join(rng: random.Random) -> nx.DiGraph:
    """3..4 sources folded by a chain of joins, then project and sink."""
    g = nx.DiGraph()
    n_src = rng.randint(3, 4)
    for s in range(n_src):
        g.add_node(f"s{s}", kind="source")
    g.add_node("j0", kind="join")
    g.add_edge("s0", "j0", partitioning="hash")
    g.add_edge("s1", "j0", partitioning="hash")
    prev = "j0"
    for s in range(2, n_src):
        node = f"j{s - 1}"
        g.add_node(node, kind="join")
        g.add_edge(prev, node, partitioning="hash")
        g.add_edge(f"s{s}", node, partitioning=rng.choice(["hash", "broadcast"]))
        prev = node
    g.add_node("p", kind="project")
    g.add_edge(prev, "p", partitioning="forward")
    g.add_node("out", kind="sink")
    g.add_edge("p", "out", partitioning="forward")
    return g


TEMPLATES = [_etl_chain, _windowed, _union_agg, _two_way_join, _broadcast_fanout, _star_join]


def make_runs(n: int, seed: int, noise: float = 0.02) -> tuple[list[nx.DiGraph], list[int]]:
    """`n` job DAGs from six template families with random variations; a
    fraction `noise` gets one extra random label edit (rare one-off jobs);
    node ids are shuffled so duplicates are only found up to isomorphism."""
    rng = random.Random(seed)
    graphs, truth = [], []
    for _ in range(n):
        fam = rng.randrange(len(TEMPLATES))
        g = TEMPLATES[fam](rng)
        if rng.random() < noise:
            if rng.random() < 0.5:
                g.nodes[rng.choice(list(g.nodes))]["kind"] = rng.choice(KINDS)
            else:
                g.edges[rng.choice(list(g.edges))]["partitioning"] = rng.choice(PARTS)
        graphs.append(shuffle_ids(g, rng))
        truth.append(fam)
    return graphs, truth


def run_cluster(args: argparse.Namespace) -> int:
    from sklearn.metrics import adjusted_rand_score

    n_jobs = args.jobs or os.cpu_count()
    t0 = time.perf_counter()
    graphs, truth = make_runs(args.cluster_runs, args.seed)
    t_gen = time.perf_counter() - t0
    print(f"# {len(graphs)} job DAGs from {len(TEMPLATES)} template families, seed={args.seed}, n_jobs={n_jobs}, per-pair budget={args.pair_max_expansions} expansions")
    t0 = time.perf_counter()
    unique, _ = dedupe(graphs)
    t_dedupe = time.perf_counter() - t0
    print(f"dedupe alone: {len(unique)} distinct graphs in {t_dedupe:.2f} s")

    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] > 5:
            last[0] = now
            print(f"  distance pairs {done}/{total} ({now - t0:.1f} s)", flush=True)

    d = distance_matrix(graphs, n_jobs=n_jobs, progress=progress, max_expansions=args.pair_max_expansions)
    t_matrix = time.perf_counter() - t0
    t0 = time.perf_counter()
    c = cluster_distance_matrix(d, k="auto")
    t_cluster = time.perf_counter() - t0
    total = t_gen + t_matrix + t_cluster  # the separate dedupe timing above is not part of the pipeline
    n_pairs = d.n_unique * (d.n_unique - 1) // 2
    iu = __import__("numpy").triu_indices(d.n_unique, 1)
    n_exact = int(d.unique_exact[iu].sum())
    ari = adjusted_rand_score(truth, c.labels)
    print(f"distance_matrix (dedupe included): {t_matrix:.2f} s for {n_pairs} distinct pairs, {n_exact} exact ({n_pairs - n_exact} not proven: over 12 nodes or out of budget)")
    print(f"cluster_distance_matrix: {t_cluster:.2f} s -> k={c.k}, silhouette={c.silhouette:.3f}, ARI vs templates={ari:.3f}")
    print(f"cluster sizes: {c.sizes.tolist()}")
    print(f"pipeline total (generation {t_gen:.2f} s + distance_matrix + clustering): {total:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "n_unique": d.n_unique, "pairs": n_pairs, "exact_pairs": n_exact,
            "seconds": {"generate": t_gen, "dedupe_alone": t_dedupe, "distance_matrix": t_matrix, "cluster": t_cluster, "total": total},
            "k": c.k, "silhouette": c.silhouette, "ari": ari, "sizes": c.sizes.tolist(),
            "family_counts": dict(Counter(truth)),
        }, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20, help="number of random DAG pairs (pair mode)")
    ap.add_argument("--nodes", default="10-12", help="node count range, e.g. 10-12")
    ap.add_argument("--pair-mode", choices=["related", "independent"], default="related",
                    help="related: second graph = first after --edits random edits (ids shuffled); independent: two unrelated DAGs")
    ap.add_argument("--edits", default="2-10", help="range of random edits in related mode")
    ap.add_argument("--nx-timeout", type=float, default=60.0, help="networkx per-pair timeout in seconds")
    ap.add_argument("--repeat", type=int, default=3, help="exact_ged runs per pair (median is reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cluster-runs", type=int, default=0, help="instead of pairs: time distance_matrix + clustering on this many DAGs")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes for --cluster-runs (default: cpu count)")
    ap.add_argument("--pair-max-expansions", type=int, default=DEFAULT_PAIR_MAX_EXPANSIONS,
                    help="per-pair search budget (branch-and-bound node expansions) for --cluster-runs")
    ap.add_argument("--json", default=None, help="also write the raw results to this file")
    args = ap.parse_args(argv)
    if args.cluster_runs:
        return run_cluster(args)
    return run_pairs(args)


if __name__ == "__main__":
    sys.exit(main())
