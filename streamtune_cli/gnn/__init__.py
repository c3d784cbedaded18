"""Graph encoders pretrained on execution histories (the first half of StreamTune).

features (numpy only: what a real deployment exposes), model (the torch-geometric encoder), train (splits,
early stopping, metrics, the non-graph baseline), artifacts (weights + metadata, checked on load), pretrain
(one model per cluster). torch is imported by model, train, artifacts and pretrain only, never here.
"""

__all__: list[str] = []
