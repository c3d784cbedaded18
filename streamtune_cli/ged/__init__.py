"""Graph edit distance (GED) between labeled job DAGs, all-pairs distance
matrices, and clustering of jobs by structure.  See docs/ged.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamtune_cli._lazy import lazy_exports

# Names resolve on first use (PEP 562), so `from streamtune_cli.ged import canonical_hash` does not import
# scipy, and nothing but cluster_distance_matrix imports scikit-learn (slow to import, rarely needed).
_EXPORTS = {
    "DEFAULT_MAX_EXPANSIONS": "budget",
    "DEFAULT_PAIR_MAX_EXPANSIONS": "budget",
    "EDGE_LABEL_ATTR": "model",
    "NODE_LABEL_ATTR": "model",
    "EditCosts": "model",
    "GedResult": "model",
    "networkx_cost_kwargs": "model",
    "canonical_hash": "canonical",
    "dedupe": "canonical",
    "same_labeled_graph": "canonical",
    "bounded_ged": "bounds",
    "lower_bound": "bounds",
    "graph_edit_distance": "distance",
    "exact_ged": "exact",
    "DistanceMatrix": "matrix",
    "distance_matrix": "matrix",
    "Clustering": "cluster",
    "assign_to_medoid": "cluster",
    "cluster_distance_matrix": "cluster",
}

__all__ = [
    "DEFAULT_MAX_EXPANSIONS",
    "DEFAULT_PAIR_MAX_EXPANSIONS",
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

if TYPE_CHECKING:
    from .bounds import bounded_ged, lower_bound
    from .budget import DEFAULT_MAX_EXPANSIONS, DEFAULT_PAIR_MAX_EXPANSIONS
    from .canonical import canonical_hash, dedupe, same_labeled_graph
    from .cluster import Clustering, assign_to_medoid, cluster_distance_matrix
    from .distance import graph_edit_distance
    from .exact import exact_ged
    from .matrix import DistanceMatrix, distance_matrix
    from .model import EDGE_LABEL_ATTR, NODE_LABEL_ATTR, EditCosts, GedResult, networkx_cost_kwargs


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
