"""Model artifacts: a state_dict of tensors (`weights.pt`) and `model.json` metadata per cluster.

Loading never unpickles: the weights file's sha256 must match the metadata before torch reads it, and torch
reads it with `weights_only=True` (tensors and plain containers only). The feature schema stored with the
model must be the one this version computes, and the state_dict must fit the stored architecture exactly.
Any mismatch is one clear ModelFileError (exit 2) naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from pathlib import Path
from typing import Any

from streamtune_cli.errors import Location, Problem, SpecError

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "WEIGHTS_FILE",
    "METADATA_FILE",
    "INDEX_FILE",
    "ModelFileError",
    "save_model",
    "load_model",
    "load_index",
]

MODEL_FORMAT = "streamtune-gnn"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.pt"
METADATA_FILE = "model.json"
INDEX_FILE = "index.json"
# A state_dict of a few layers is well under a megabyte; refuse anything absurd before reading it.
_MAX_WEIGHTS_BYTES = 64 * 1024 * 1024


class ModelFileError(SpecError):
    """A model file that is missing, tampered with, truncated or made for other features (exit 2)."""

    def __init__(self, path: str | Path, message: str):
        super().__init__([Problem(Location(str(path)), message)])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import torch
    import torch_geometric

    from streamtune_cli import __version__

    return {
        "streamtune": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def save_model(directory: str | Path, model: Any, metadata: dict[str, Any]) -> Path:
    """Write weights.pt and model.json into `directory` (atomically, each); returns the directory."""
    import torch

    from streamtune_cli.gnn.features import describe
    from streamtune_cli.io import write_json_atomic

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    data = buffer.getvalue()
    weights = directory / WEIGHTS_FILE
    tmp = weights.with_name(weights.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(weights)
    meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "features": describe(),
        "encoder": model.config.to_json(),
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": _sha256(data),
        "weights_bytes": len(data),
        "libraries": library_versions(),
        **metadata,
    }
    write_json_atomic(directory / METADATA_FILE, meta)
    return directory


def _read_json(path: Path, role: str, missing: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(path, missing) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"cannot read {role}: {exc}") from None


def _read_metadata(directory: Path) -> dict[str, Any]:
    from streamtune_cli.gnn.features import describe

    path = directory / METADATA_FILE
    meta = _read_json(path, "model metadata", "no model metadata here (run `streamtune pretrain` to build models)")
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelFileError(path, f"not a streamtune model (format is not {MODEL_FORMAT!r})")
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(path, f"model format version {meta.get('format_version')!r}, this streamtune reads {MODEL_FORMAT_VERSION}")
    if meta.get("features") != describe():
        raise ModelFileError(
            path,
            "the model was trained on other features (feature schema mismatch): rebuild it with `streamtune pretrain`",
        )
    encoder = meta.get("encoder")
    if not isinstance(encoder, dict) or not isinstance(meta.get("weights_sha256"), str):
        raise ModelFileError(path, "model metadata lacks the encoder configuration or the weights checksum")
    return meta


def load_model(directory: str | Path) -> tuple[Any, dict[str, Any]]:
    """(encoder in eval mode, metadata) from a directory written by save_model; ModelFileError otherwise."""
    import torch

    from streamtune_cli.gnn.model import BottleneckEncoder, EncoderConfig

    directory = Path(directory)
    meta = _read_metadata(directory)
    weights = directory / str(meta.get("weights_file", WEIGHTS_FILE))
    if weights.parent.resolve() != directory.resolve():
        raise ModelFileError(directory / METADATA_FILE, "weights_file must name a file in the model's own folder")
    try:
        size = weights.stat().st_size
        if size > _MAX_WEIGHTS_BYTES:
            raise ModelFileError(weights, f"weights file is {size:,} bytes, more than any streamtune model")
        data = weights.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(weights, "weights file is missing") from None
    except OSError as exc:
        raise ModelFileError(weights, f"cannot read weights: {exc.strerror or exc}") from None
    if _sha256(data) != meta["weights_sha256"]:
        raise ModelFileError(weights, "weights do not match the checksum in model.json (tampered with or truncated)")
    try:
        config = EncoderConfig(**meta["encoder"])
        if not (1 <= config.hidden <= 4096 and 0 <= config.layers <= 64 and 0.0 <= config.dropout < 1.0):
            raise ValueError(f"hidden {config.hidden}, layers {config.layers}, dropout {config.dropout} out of range")
        model = BottleneckEncoder(config)
    except Exception as exc:  # torch raises RuntimeError for impossible shapes: still the file's fault
        raise ModelFileError(directory / METADATA_FILE, f"bad encoder configuration: {str(exc)[:200]}") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # torch raises several types for a file it cannot use; none may escape as a bug
        raise ModelFileError(weights, f"weights do not fit the stored architecture: {type(exc).__name__}: {str(exc)[:200]}") from None
    model.eval()
    return model, meta


def load_index(directory: str | Path) -> dict[str, Any]:
    """models/index.json: which cluster's model lives in which folder."""
    path = Path(directory) / INDEX_FILE
    index = _read_json(path, "the model index", "no model index here (run `streamtune pretrain HISTORY --clusters C --out DIR`)")
    if not isinstance(index, dict) or index.get("format") != MODEL_FORMAT or not isinstance(index.get("clusters"), list):
        raise ModelFileError(path, "not a streamtune model index")
    return index
