"""The benchmark's generated job is a valid spec that both modes plan (no timing here: the benchmark
prints its figures; tests never assert on time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from streamtune_cli.fusion import plan_fusion
from streamtune_cli.spec import load_spec_text

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fuse.py"


def _generate(n_operators: int, seed: int) -> dict:
    module_spec = importlib.util.spec_from_file_location("bench_fuse", BENCH)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.generate_spec(n_operators, seed)


def test_generated_job_is_valid_seeded_and_plannable() -> None:
    data = _generate(80, seed=3)
    assert data == _generate(80, seed=3)
    spec = load_spec_text(yaml.safe_dump(data, sort_keys=False), "generated.yaml")
    assert len(spec.operators) == 80
    for mode in ("ours", "flink"):
        plan = plan_fusion(spec, mode=mode)
        assert plan.summary()["fused_edges"] > 0
