"""The per-cluster encoder: GINE message passing with edge features, and a bottleneck head.

Every edge of the DAG is used in both directions (tagged in its features), so after a few layers an
operator's embedding reflects its upstream's backpressure and its downstream's saturation: the two things
the bottleneck label depends on besides its own load. This module (and gnn.train, gnn.artifacts) is the
only place streamtune imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["EncoderConfig", "BottleneckEncoder", "to_data", "collate"]


@dataclass(frozen=True)
class EncoderConfig:
    node_dim: int
    edge_dim: int
    hidden: int = 48
    layers: int = 3
    dropout: float = 0.1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class BottleneckEncoder(nn.Module):
    """x (n, node_dim), edge_index (2, m), edge_attr (m, edge_dim) -> embeddings (n, hidden), logits (n,)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        from torch_geometric.nn import GINEConv

        self.config = config
        h = config.hidden
        self.input = nn.Sequential(nn.Linear(config.node_dim, h), nn.ReLU())
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h)), train_eps=True, edge_dim=config.edge_dim)
            for _ in range(config.layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(config.layers))
        self.dropout = nn.Dropout(config.dropout)
        # The head sees the embedding and the raw node features (a skip connection): the operator's own
        # load need not survive three rounds of mixing with its neighbours'.
        self.head = nn.Sequential(nn.Linear(h + config.node_dim, h), nn.ReLU(), nn.Linear(h, 1))
        # The scaling head: delta in a(p) ~ p^-delta (how much one instance's ability drops as instances are
        # added), in [0, 1]; the tuner's prior for operators it has seen at one parallelism only.
        self.scaling = nn.Sequential(nn.Linear(h + config.node_dim, h), nn.ReLU(), nn.Linear(h, 1))

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for conv, norm in zip(self.convs, self.norms):
            h = norm(h + self.dropout(torch.relu(conv(h, edge_index, edge_attr))))
        return h

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(x, edge_index, edge_attr)
        logits = self.head(torch.cat([h, x], dim=1)).squeeze(-1)
        return h, logits

    def scaling_exponent(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """Predicted delta per operator, in [0, 1]."""
        h = self.embed(x, edge_index, edge_attr)
        return torch.sigmoid(self.scaling(torch.cat([h, x], dim=1)).squeeze(-1))


def to_data(sample: Any) -> Any:
    """A gnn.features.GraphSample as a torch_geometric Data object."""
    from torch_geometric.data import Data

    import numpy as np

    delta = sample.delta if sample.delta is not None else np.full(len(sample.y), np.nan, dtype=np.float32)
    return Data(
        x=torch.from_numpy(sample.x),
        edge_index=torch.from_numpy(sample.edge_index),
        edge_attr=torch.from_numpy(sample.edge_attr),
        y=torch.from_numpy(sample.y),
        delta=torch.from_numpy(delta),
    )


def collate(datas: list[Any]) -> Any:
    from torch_geometric.data import Batch

    return Batch.from_data_list(datas)
