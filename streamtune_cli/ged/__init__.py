"""Graph edit distance (GED) between labeled job DAGs, all-pairs distance
matrices, and clustering of jobs by structure.  See docs/ged.md."""

from .bounds import bounded_ged, lower_bound
from .canonical import canonical_hash, dedupe, same_labeled_graph
from .cluster import Clustering, assign_to_medoid, cluster_distance_matrix
from .distance import graph_edit_distance
from .exact import exact_ged
from .matrix import DistanceMatrix, distance_matrix
from .model import (
    EDGE_LABEL_ATTR,
    NODE_LABEL_ATTR,
    EditCosts,
    GedResult,
    networkx_cost_kwargs,
)

__all__ = [
    "EDGE_LABEL_ATTR",
    "NODE_LABEL_ATTR",
    "Clustering",
    "DistanceMatrix",
    "EditCosts",
    "GedResult",
    "assign_to_medoid",
    "bounded_ged",
    "canonical_hash",
    "cluster_distance_matrix",
    "dedupe",
    "distance_matrix",
    "exact_ged",
    "graph_edit_distance",
    "lower_bound",
    "networkx_cost_kwargs",
    "same_labeled_graph",
]
