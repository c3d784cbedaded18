"""Turns labeled networkx DiGraphs into compact integer arrays (node label ids
and an edge-label adjacency matrix) that the GED solvers work on."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from .model import EDGE_LABEL_ATTR, NODE_LABEL_ATTR, _check_graph

__all__ = ["EncodedGraph", "LabelVocab", "encode", "encode_many", "encode_pair"]


class LabelVocab:
    """Maps labels to small integers; edge label ids start at 1 because 0
    means "no edge" in the adjacency matrices."""

    def __init__(self) -> None:
        self.node_ids: dict[Hashable, int] = {}
        self.edge_ids: dict[Hashable, int] = {}

    def node_id(self, label: Hashable) -> int:
        return self.node_ids.setdefault(label, len(self.node_ids))

    def edge_id(self, label: Hashable) -> int:
        return self.edge_ids.setdefault(label, len(self.edge_ids) + 1)

    @property
    def n_edge_labels(self) -> int:
        return len(self.edge_ids)


@dataclass(frozen=True, eq=False)
class EncodedGraph:
    """Integer form of one graph under a shared `LabelVocab`.

    `adj[i, j]` is 0 when there is no edge i->j, else the edge label id.
    Plain numpy arrays so instances pickle cheaply to worker processes.
    """

    nodes: tuple[Hashable, ...]
    labels: np.ndarray
    adj: np.ndarray

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_edges(self) -> int:
        return int(np.count_nonzero(self.adj))


def encode(g: nx.DiGraph, vocab: LabelVocab) -> EncodedGraph:
    """Encode `g`; new labels are added to `vocab`."""
    _check_graph(g)
    # plain dict iteration (adjacency() yields the inner dicts): the
    # reporting views of g.edges(data=True) cost more than the rest of a
    # small GED computation
    nid, eid = vocab.node_id, vocab.edge_id
    nodes = tuple(g)
    index = {node: i for i, node in enumerate(nodes)}
    labels = np.array([nid(lab) for _, lab in g.nodes(data=NODE_LABEL_ATTR)], dtype=np.int64)
    adj = np.zeros((len(nodes), len(nodes)), dtype=np.int64)
    rows: list[int] = []
    cols: list[int] = []
    labs: list[int] = []
    for u, nbrs in g.adjacency():
        iu = index[u]
        for v, d in nbrs.items():
            rows.append(iu)
            cols.append(index[v])
            labs.append(eid(d.get(EDGE_LABEL_ATTR)))
    if rows:
        adj[rows, cols] = labs
    return EncodedGraph(nodes=nodes, labels=labels, adj=adj)


def encode_pair(g1: nx.DiGraph, g2: nx.DiGraph) -> tuple[EncodedGraph, EncodedGraph, int]:
    """Encode two graphs under one fresh vocabulary; also returns the number of edge labels."""
    vocab = LabelVocab()
    e1 = encode(g1, vocab)
    e2 = encode(g2, vocab)
    return e1, e2, vocab.n_edge_labels


def encode_many(graphs: Iterable[nx.DiGraph]) -> tuple[list[EncodedGraph], int]:
    """Encode many graphs under one vocabulary (so any pair can be compared)."""
    vocab = LabelVocab()
    encoded = [encode(g, vocab) for g in graphs]
    return encoded, vocab.n_edge_labels
