"""Model files: saved-then-loaded predicts identically; tampered, truncated, pickled or mismatched files are
refused with one clear error; and `streamtune pretrain` end to end on a tiny history."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.gnn.artifacts import METADATA_FILE, WEIGHTS_FILE, ModelFileError, load_index, load_model, save_model
from streamtune_cli.gnn.features import EDGE_FEATURES, NODE_FEATURES, samples_from_history
from streamtune_cli.gnn.model import BottleneckEncoder, EncoderConfig
from streamtune_cli.gnn.train import predict

runner = CliRunner()


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, BottleneckEncoder]:
    torch.manual_seed(3)
    model = BottleneckEncoder(EncoderConfig(len(NODE_FEATURES), len(EDGE_FEATURES), hidden=16, layers=2)).eval()
    return save_model(tmp_path / "m", model, {"cluster": "0"}), model


def test_saved_then_loaded_predicts_identically(saved, tiny_history) -> None:
    directory, model = saved
    loaded, meta = load_model(directory)
    samples = samples_from_history(tiny_history[0])[:40]
    np.testing.assert_array_equal(predict(model, samples), predict(loaded, samples))
    assert meta["cluster"] == "0" and meta["features"]["node"] == list(NODE_FEATURES)
    assert {"torch", "torch_geometric", "numpy"} <= set(meta["libraries"])


def _set_checksum(directory: Path) -> None:
    import hashlib

    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["weights_sha256"] = hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()
    (directory / METADATA_FILE).write_text(json.dumps(meta))


def test_a_flipped_byte_is_refused_by_checksum(saved) -> None:
    directory, _ = saved
    data = bytearray((directory / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (directory / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(directory)


def test_a_truncated_file_is_refused(saved) -> None:
    directory, _ = saved
    data = (directory / WEIGHTS_FILE).read_bytes()
    (directory / WEIGHTS_FILE).write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(directory)
    _set_checksum(directory)  # even with a matching checksum, a truncated archive is not loaded
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(directory)


class _Payload:
    def __reduce__(self):  # what a malicious pickle does: call something on load
        return (Path("/tmp/streamtune-pwned").touch, ())


def test_a_pickled_object_is_never_unpickled(saved, tmp_path: Path) -> None:
    directory, _ = saved
    marker = Path("/tmp/streamtune-pwned")
    marker.unlink(missing_ok=True)
    torch.save({"input.0.weight": _Payload()}, directory / WEIGHTS_FILE, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    _set_checksum(directory)
    with pytest.raises(ModelFileError):
        load_model(directory)
    assert not marker.exists()


def test_a_model_for_other_features_or_shapes_is_refused(saved) -> None:
    directory, _ = saved
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["features"]["node"] = meta["features"]["node"][:-1]
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="feature schema"):
        load_model(directory)
    meta["features"]["node"] = list(NODE_FEATURES)
    meta["encoder"]["hidden"] = 32  # the weights are for 16
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(directory)
    meta["encoder"]["hidden"] = -1
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="bad encoder configuration"):
        load_model(directory)
    (directory / METADATA_FILE).write_text("{not json")
    with pytest.raises(ModelFileError, match="cannot read"):
        load_model(directory)


def test_pretrain_cli_end_to_end(tiny_history, tmp_path: Path) -> None:
    history, clusters = tiny_history
    out = tmp_path / "models"
    args = ["pretrain", str(history), "--clusters", str(clusters), "--out", str(out), "--epochs", "3", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    index = load_index(out)
    n_clusters = len(json.loads(clusters.read_text())["clusters"])
    assert len(index["clusters"]) == len(report["clusters"]) == n_clusters
    for entry in index["clusters"]:
        model, meta = load_model(out / entry["path"])
        assert meta["cluster"] == entry["cluster"] and meta["medoid"]["dag_hash"] == entry["medoid_dag_hash"]
        assert meta["training"]["split"]["by"] == "run_id"
    for row in report["clusters"]:
        jobs = row["jobs"]
        assert jobs["train"] > 0 and jobs["test"] > 0
    # Same seed, same models: the weights' checksums match a second run.
    again = tmp_path / "again"
    assert runner.invoke(app, args[:5] + [str(again)] + args[6:]).exit_code == 0
    for entry in index["clusters"]:
        a = json.loads((out / entry["path"] / METADATA_FILE).read_text())["weights_sha256"]
        b = json.loads((again / entry["path"] / METADATA_FILE).read_text())["weights_sha256"]
        assert a == b


def test_pretrain_evaluate_reports_baseline_and_held_out_families(tiny_history, tmp_path: Path) -> None:
    history, clusters = tiny_history
    result = runner.invoke(
        app, ["pretrain", str(history), "--clusters", str(clusters), "--out", str(tmp_path / "m"), "--epochs", "1", "--evaluate"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m" / "pretrain-report.json").read_text())
    assert all("baseline_held_out_jobs" in row for row in report["clusters"])
    families = {f["family"] for f in report["families"]}
    assert families and all(f["jobs"]["test"] > 0 for f in report["families"])
    assert "held-out families" in result.output and "baseline ROC-AUC" in result.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--device", "tpu"], "--device must be auto, cpu or cuda"),
        (["--epochs", "0"], "Invalid value"),
    ],
)
def test_pretrain_bad_options_exit_2(tiny_history, tmp_path: Path, extra: list[str], message: str) -> None:
    history, clusters = tiny_history
    result = runner.invoke(app, ["pretrain", str(history), "--clusters", str(clusters), "--out", str(tmp_path / "m"), *extra])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_pretrain_on_a_missing_history_or_bad_clusters_exits_2(tiny_history, tmp_path: Path) -> None:
    history, clusters = tiny_history
    result = runner.invoke(app, ["pretrain", str(tmp_path / "nope"), "--clusters", str(clusters), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "history" in result.output
    bad = tmp_path / "clusters.json"
    bad.write_text('{"format": "something else"}')
    result = runner.invoke(app, ["pretrain", str(history), "--clusters", str(bad), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "not a clusters file" in result.output
