"""Training and evaluation of the per-cluster encoders: splits by job, early stopping, seeded, CPU first.

Metrics are computed on jobs the model never saw (runs split by run id, never by row), and the
leave-one-family-out evaluation trains without a whole DAG family and tests on it. A non-graph baseline
(scikit-learn's HistGradientBoostingClassifier on the same per-operator features) runs on the same splits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from streamtune_cli.errors import UsageError
from streamtune_cli.gnn.features import EDGE_FEATURES, NODE_FEATURES, GraphSample, tabular
from streamtune_cli.gnn.model import BottleneckEncoder, EncoderConfig, collate, to_data

__all__ = [
    "TrainConfig",
    "TrainResult",
    "resolve_device",
    "split_by_job",
    "train_encoder",
    "predict",
    "classification_metrics",
    "baseline_scores",
    "scaling_rmse",
]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    patience: int = 6
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    hidden: int = 48
    layers: int = 3
    dropout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not (1 <= self.epochs <= 10_000 and 1 <= self.patience and 1 <= self.batch_size <= 100_000):
            raise UsageError("epochs must be 1..10000, patience >= 1 and batch size 1..100000")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise UsageError(f"the learning rate must be a finite number > 0, got {self.learning_rate}")


@dataclass
class TrainResult:
    model: BottleneckEncoder
    best_epoch: int
    epochs_run: int
    train_s: float
    curve: list[dict[str, float]] = field(default_factory=list)
    validation: dict[str, float | None] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when a GPU is visible, else CPU. Asking for cuda without one is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available (use --device cpu or auto)")
        return torch.device("cuda")
    if name == "cpu":
        return torch.device("cpu")
    raise UsageError(f"unknown device {name!r} (choose auto, cpu or cuda)")


def split_by_job(run_ids: Sequence[str], fractions: Sequence[float], seed: int) -> list[set[str]]:
    """Partition distinct run ids (jobs) into len(fractions) groups of about those shares, seeded.

    Rows of one job never land in two groups. Every group with a positive share gets at least one job when
    there are enough jobs."""
    jobs = sorted(set(run_ids))
    rng = np.random.default_rng(seed)
    order = [jobs[i] for i in rng.permutation(len(jobs))]
    total = sum(fractions)
    bounds, acc = [], 0.0
    for share in fractions:
        acc += share / total
        bounds.append(round(acc * len(order)))
    groups, start = [], 0
    for end in bounds:
        groups.append(set(order[start:end]))
        start = end
    # Small clusters: make sure the validation and test groups are not empty.
    for g in range(1, len(groups)):
        if not groups[g] and len(groups[0]) > 1 and fractions[g] > 0:
            moved = sorted(groups[0])[-1]
            groups[0].discard(moved)
            groups[g].add(moved)
    return groups


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC, PR-AUC (average precision) and F1 at 0.5; AUCs are None when only one class is present."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    y = np.asarray(y) > 0.5
    both = 0 < int(y.sum()) < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "f1": float(f1_score(y, p >= 0.5, zero_division=0)) if len(y) else None,
        "operators": int(len(y)),
        "positives": int(y.sum()),
    }


def predict(model: BottleneckEncoder, samples: Sequence[GraphSample], device: torch.device | str = "cpu", batch_size: int = 512) -> np.ndarray:
    """Bottleneck probabilities for every operator of every sample, concatenated in sample order."""
    if not samples:
        return np.zeros(0, dtype=np.float32)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            batch = collate([to_data(s) for s in samples[start : start + batch_size]]).to(device)
            _, logits = model(batch.x, batch.edge_index, batch.edge_attr)
            out.append(torch.sigmoid(logits).cpu().numpy())
    return np.concatenate(out)


def train_encoder(
    train: Sequence[GraphSample],
    validation: Sequence[GraphSample],
    config: TrainConfig = TrainConfig(),
    *,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Fit one encoder with early stopping on the validation jobs' loss; returns the best epoch's model."""
    if not train:
        raise UsageError("no training windows: the cluster has no runs left to train on")
    _seed_everything(config.seed)
    device = torch.device(device)
    model = BottleneckEncoder(
        EncoderConfig(len(NODE_FEATURES), len(EDGE_FEATURES), config.hidden, config.layers, config.dropout)
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    train_data = [to_data(s) for s in train]
    # Plain (unweighted) log-loss: weighting the rare bottleneck class up was tried and lowered F1 at 0.5
    # on every cluster of the shipped sample (probabilities came out too high), with no gain in ROC-AUC.
    loss_fn = torch.nn.BCEWithLogitsLoss()
    val_batches = [collate([to_data(s) for s in validation[i : i + 512]]).to(device) for i in range(0, len(validation), 512)]
    val_y = np.concatenate([s.y for s in validation]) if validation else np.zeros(0)
    generator = np.random.default_rng(config.seed)
    # Batches are formed once from a seeded shuffle and then visited in a new order every epoch:
    # collating graphs is most of an epoch's cost on a CPU, and mixing within a fixed batch costs little.
    batch_order = generator.permutation(len(train_data))
    train_batches = [
        collate([train_data[i] for i in batch_order[start : start + config.batch_size]]).to(device)
        for start in range(0, len(batch_order), config.batch_size)
    ]
    best_loss, best_state, best_epoch, stale = math.inf, None, 0, 0
    curve: list[dict[str, float]] = []
    started = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        train_loss = 0.0
        for index in generator.permutation(len(train_batches)):
            batch = train_batches[index]
            optimizer.zero_grad()
            loss = _loss(model, batch, loss_fn)
            loss.backward()
            optimizer.step()
            train_loss += float(loss.detach()) * batch.num_graphs
        train_loss /= len(train_data)
        model.eval()
        with torch.no_grad():
            val_loss, probs = 0.0, []
            for batch in val_batches:
                _, logits = model(batch.x, batch.edge_index, batch.edge_attr)
                val_loss += float(_loss(model, batch, loss_fn)) * batch.num_graphs
                probs.append(torch.sigmoid(logits).cpu().numpy())
        val_loss = val_loss / len(validation) if validation else train_loss
        val_auc = classification_metrics(val_y, np.concatenate(probs))["roc_auc"] if validation else None
        point = {"epoch": float(epoch), "train_loss": train_loss, "val_loss": val_loss, "val_auc": val_auc if val_auc is not None else math.nan}
        curve.append(point)
        if on_epoch is not None:
            on_epoch(point)
        if val_loss < best_loss - 1e-5:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    validation_metrics = classification_metrics(val_y, predict(model, validation, device)) if validation else {}
    return TrainResult(model, best_epoch, epoch, time.perf_counter() - started, curve, validation_metrics)


# Weight of the scaling exponent's squared error next to the bottleneck log-loss (delta lives in [0, 1], so
# its squared errors are small; x5 puts both terms on a similar scale on the shipped sample).
SCALING_LOSS_WEIGHT = 5.0


def _loss(model: BottleneckEncoder, batch: Any, loss_fn: Any) -> torch.Tensor:
    h = model.embed(batch.x, batch.edge_index, batch.edge_attr)
    features = torch.cat([h, batch.x], dim=1)
    loss = loss_fn(model.head(features).squeeze(-1), batch.y)
    known = ~torch.isnan(batch.delta)
    if bool(known.any()):
        delta = torch.sigmoid(model.scaling(features).squeeze(-1))
        loss = loss + SCALING_LOSS_WEIGHT * torch.mean((delta[known] - batch.delta[known]) ** 2)
    return loss


def scaling_rmse(model: BottleneckEncoder, samples: Sequence[GraphSample], device: torch.device | str = "cpu") -> float | None:
    """Root mean squared error of the predicted scaling exponent where the history measured one."""
    if not samples:
        return None
    model.eval()
    errors = []
    with torch.no_grad():
        for start in range(0, len(samples), 512):
            batch = collate([to_data(s) for s in samples[start : start + 512]]).to(device)
            known = ~torch.isnan(batch.delta)
            if bool(known.any()):
                predicted = model.scaling_exponent(batch.x, batch.edge_index, batch.edge_attr)
                errors.append(((predicted[known] - batch.delta[known]) ** 2).cpu().numpy())
    if not errors:
        return None
    return float(np.sqrt(np.concatenate(errors).mean()))


def baseline_scores(train: Sequence[GraphSample], test: Sequence[GraphSample], seed: int = 0) -> dict[str, float | None]:
    """The non-graph baseline on the same split: gradient-boosted trees on each operator's own features."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_train, y_train = tabular(list(train))
    x_test, y_test = tabular(list(test))
    if len(y_test) == 0:
        return classification_metrics(y_test, np.zeros(0))
    if len(set(y_train.tolist())) < 2:
        return classification_metrics(y_test, np.full(len(y_test), float(y_train.mean()) if len(y_train) else 0.0))
    model = HistGradientBoostingClassifier(random_state=seed, max_iter=200)
    model.fit(x_train, y_train)
    return classification_metrics(y_test, model.predict_proba(x_test)[:, 1])
