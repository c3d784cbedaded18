"""The encoder on tiny hand-built graphs: equivariance under node reordering, and seeded training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamtune_cli.gnn.features import EDGE_FEATURES, NODE_FEATURES, GraphSample
from streamtune_cli.gnn.model import BottleneckEncoder, EncoderConfig
from streamtune_cli.gnn.train import TrainConfig, predict, train_encoder


def _tiny(rng: np.random.Generator, n: int = 4) -> GraphSample:
    # src -> a -> b -> sink, plus src -> b: 4 nodes, 4 DAG edges (8 directed messages)
    dag = [(0, 1), (1, 2), (2, 3), (0, 2)][: n + 0]
    src = [u for u, v in dag] + [v for u, v in dag]
    dst = [v for u, v in dag] + [u for u, v in dag]
    attr = np.zeros((len(src), len(EDGE_FEATURES)), dtype=np.float32)
    attr[: len(dag), -2] = 1.0
    attr[len(dag) :, -1] = 1.0
    attr[:, 0] = 1.0
    x = rng.random((n, len(NODE_FEATURES))).astype(np.float32)
    y = (x[:, NODE_FEATURES.index("busy_max")] > 0.8).astype(np.float32)
    return GraphSample("r", 0, None, tuple("abcd"[:n]), x, np.array([src, dst], dtype=np.int64), attr, y)


def test_embeddings_are_equivariant_under_node_reordering() -> None:
    torch.manual_seed(0)
    model = BottleneckEncoder(EncoderConfig(len(NODE_FEATURES), len(EDGE_FEATURES))).eval()
    sample = _tiny(np.random.default_rng(1))
    perm = np.array([2, 0, 3, 1])  # new position i holds old node perm[i]
    inverse = np.argsort(perm)
    x2 = sample.x[perm]
    edges2 = inverse[sample.edge_index]
    with torch.no_grad():
        h1, l1 = model(torch.from_numpy(sample.x), torch.from_numpy(sample.edge_index), torch.from_numpy(sample.edge_attr))
        h2, l2 = model(torch.from_numpy(x2), torch.from_numpy(edges2), torch.from_numpy(sample.edge_attr))
    torch.testing.assert_close(h2, h1[torch.from_numpy(perm)], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l2, l1[torch.from_numpy(perm)], rtol=1e-5, atol=1e-5)


def test_messages_use_the_edges() -> None:
    # Changing one node's features changes its neighbours' embeddings (message passing is live) but not
    # an isolated graph's.
    torch.manual_seed(0)
    model = BottleneckEncoder(EncoderConfig(len(NODE_FEATURES), len(EDGE_FEATURES))).eval()
    sample = _tiny(np.random.default_rng(2))
    x = torch.from_numpy(sample.x.copy())
    edge_index, edge_attr = torch.from_numpy(sample.edge_index), torch.from_numpy(sample.edge_attr)
    with torch.no_grad():
        before = model.embed(x, edge_index, edge_attr)
        x[0] += 1.0
        after = model.embed(x, edge_index, edge_attr)
    assert not torch.allclose(before[1], after[1])  # node 1 is node 0's neighbour


def test_training_is_seeded_and_learns_a_simple_rule() -> None:
    rng = np.random.default_rng(0)
    samples = [_tiny(rng) for _ in range(200)]
    config = TrainConfig(epochs=15, patience=15, seed=7, batch_size=32)
    first = train_encoder(samples[:150], samples[150:], config)
    second = train_encoder(samples[:150], samples[150:], config)
    for (k, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)
    p = predict(first.model, samples[150:])
    y = np.concatenate([s.y for s in samples[150:]])
    # busy_max > 0.8 is a rule of one feature: the model separates it almost perfectly.
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.95


def test_cuda_without_a_gpu_is_a_usage_error() -> None:
    from streamtune_cli.errors import UsageError
    from streamtune_cli.gnn.train import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device"):
            resolve_device("cuda")


def test_the_baseline_scores_an_empty_test_set_without_crashing() -> None:
    from streamtune_cli.gnn.train import baseline_scores

    rng = np.random.default_rng(4)
    scores = baseline_scores([_tiny(rng) for _ in range(20)], [])
    assert scores["operators"] == 0 and scores["roc_auc"] is None
